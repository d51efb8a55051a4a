"""Every route publishes what its success body holds: a response model in the OpenAPI document (schemathesis,
in tests/faults, then checks real bodies against it)."""


def success_schemas(schema):
    """(method, path, status, JSON schema of the body or None) for each 2xx response of each operation."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    yield method, path, status, response.get("content", {}).get("application/json", {}).get("schema")


def is_model(body):
    """A named model, or a list of one; a bare `object` (what `dict[str, Any]` gives) says nothing."""
    return body is not None and ("$ref" in body or (body.get("type") == "array" and "$ref" in body.get("items", {})))


def test_every_success_body_has_a_response_model(client):
    schemas = list(success_schemas(client.get("/openapi.json").json()))
    assert len(schemas) >= 25
    assert [(method, path, status) for method, path, status, body in schemas if not is_model(body)] == []


def test_fields_a_route_leaves_out_stay_out(client, auth):
    # Parts only some bodies have (a runtime override's author, a rule's limits) are absent, not null
    # (a job's recent runs: test_jobs_api.py).
    settings = client.get("/moderation/settings", headers=auth).json()
    assert settings["sources"]["dry_run"] == {"source": "env"}
    rules = client.get("/moderation/rules", headers=auth).json()["rules"]
    keyword = next(rule for rule in rules if rule["detector"] == "keyword")
    assert "keywords" in keyword and "applies_to" not in keyword
