"""Webhook intake drills against a real `modwatch api` process: Redis outage, bad input, auth."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest
import redis
from rq import Queue

from faults.support import API_KEY, WEBHOOK_SECRET, modwatch, stop
from isolation import free_port, mastodon_recordings, wait_http

PATH = "/webhooks/mastodon_events"


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def delivery(status_id: int) -> bytes:
    envelope = json.loads((mastodon_recordings() / "webhooks" / "status.created.body.json").read_text())
    envelope["object"]["id"] = str(status_id)
    return json.dumps(envelope).encode()


@pytest.fixture
def api(fault_env, tmp_path):
    port = free_port()
    process = modwatch("api", "--host", "127.0.0.1", "--port", str(port), env=fault_env, log=tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/livez", process)
    yield base
    stop(process)


def test_redis_stopped_and_restarted_during_intake_loses_and_duplicates_nothing(fault_env, private_redis, tmp_path):
    env = {**fault_env, "REDIS_URL": private_redis.url}
    port = free_port()
    process = modwatch("api", "--host", "127.0.0.1", "--port", str(port), env=env, log=tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}{PATH}"
    answers: dict[int, int] = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/livez", process)
        with httpx.Client(timeout=30) as client:
            def send(status_id: int) -> int:
                body = delivery(status_id)
                return client.post(url, content=body, headers=signed(body)).status_code

            for status_id in range(1, 21):
                answers[status_id] = send(status_id)
            private_redis.stop()
            for status_id in range(21, 41):
                answers[status_id] = send(status_id)
            private_redis.start()
            for status_id in range(41, 61):
                answers[status_id] = send(status_id)
            # Mastodon redelivers what was not answered 2xx; redelivers of accepted ones are dupes.
            redelivered = {status_id: send(status_id) for status_id, code in list(answers.items()) if code == 503}
            duplicates = [client.post(url, content=delivery(s), headers=signed(delivery(s))).json()["status"]
                          for s in (1, 41)]
    finally:
        stop(process)
    assert {answers[n] for n in range(1, 21)} == {202} and {answers[n] for n in range(41, 61)} == {202}
    assert {answers[n] for n in range(21, 41)} == {503}  # an outage is answered 503, so Mastodon redelivers
    assert set(redelivered.values()) == {202}
    assert duplicates == ["duplicate", "duplicate"]
    queued = Queue("webhooks", connection=redis.Redis.from_url(private_redis.url)).get_job_ids()
    # Every delivery, accepted the first time or on redelivery, is queued exactly once.
    assert sorted(queued) == sorted(f"wh-status_created-{n}" for n in range(1, 61))
    assert set(answers.values()) <= {202, 503}


def test_bad_input_gets_a_clear_4xx(api):
    url = api + PATH
    body = delivery(7)
    cases = {
        "oversized": (b'{"event":"status.created","object":{"id":"1","x":"' + b"a" * 1_100_000 + b'"}}', None, 413),
        "not json": (b"this is not json", None, 400),
        "wrong content type": (body, {"Content-Type": "text/plain"}, 415),
        "deep nesting": (b'{"event":"status.created","object":{"id":"1","n":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
                         None, 400),
        "not an object": (b"[1,2,3]", None, 400),
        "bad signature": (body, {"Content-Type": "application/json", "X-Hub-Signature": "sha256=00"}, 401),
        "no signature": (body, {"Content-Type": "application/json"}, 401),
    }
    with httpx.Client(timeout=60) as client:
        for name, (content, headers, expected) in cases.items():
            headers = {**signed(content), **(headers or {})}
            if name == "no signature":
                headers.pop("X-Hub-Signature")
            answer = client.post(url, content=content, headers=headers)
            assert answer.status_code == expected, (name, answer.status_code, answer.text[:200])
            detail = answer.json().get("detail")
            assert isinstance(detail, str) and detail, name  # a reason, not just a status


def test_unknown_event_is_acknowledged_as_ignored(api):
    """Acknowledged, so Mastodon does not redeliver it, and said to be ignored."""
    content = b'{"event":"nonsense.happened","object":{"id":"1"}}'
    answer = httpx.post(api + PATH, content=content, headers=signed(content))
    assert answer.status_code == 202 and answer.json()["status"] == "ignored"


def protected_routes(schema: dict) -> list[tuple[str, str]]:
    routes = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if path.startswith(("/jobs", "/moderation")):
                routes.append((method.upper(), path))
    return routes


def test_wrong_or_missing_api_key_gets_401_on_every_protected_route(api):
    schema = httpx.get(api + "/openapi.json").json()
    routes = protected_routes(schema)
    assert len(routes) >= 10, routes
    with httpx.Client(timeout=30) as client:
        for method, path in routes:
            concrete = path.replace("{", "").replace("}", "")  # any value: auth is checked first
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"X-API-Key": ""}):
                answer = client.request(method, api + concrete, headers=headers, json={})
                assert answer.status_code == 401, (method, path, headers, answer.status_code)
                assert API_KEY not in answer.text


def test_schemathesis_with_all_checks_finds_nothing(api):
    """Every check schemathesis has (`--checks all`): no 5xx, every status, content type, header and body as the
    published schema says (4xx bodies included), and routes refuse a request without the API key. It counts the
    cases it ran: a hypothesis that cannot generate any would otherwise pass having checked nothing."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import ALL_CHECKS

    schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI publishes OpenAPI 3.1
    schema = schemathesis.from_uri(api + "/openapi.json")
    failures: dict[tuple[str, str], str] = {}
    ran: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    def fuzz(operation) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case):
            ran[operation.verbose_name] = ran.get(operation.verbose_name, 0) + 1
            case.headers = {**(case.headers or {}), "X-API-Key": API_KEY}
            try:
                case.call_and_validate(base_url=api, checks=ALL_CHECKS, timeout=30)
            except AssertionError as failure:  # schemathesis's CheckFailed, one per kind of failure
                failures.setdefault((operation.verbose_name, str(failure).strip().splitlines()[0]), str(failure)[:800])

        call()

    for operation in operations:
        fuzz(operation)
    assert {check.__name__ for check in ALL_CHECKS} >= {
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
        "response_schema_conformance", "ignored_auth"}
    assert set(ran) == {operation.verbose_name for operation in operations}  # every operation ran
    assert sum(ran.values()) >= 150, ran
    assert not failures, "\n\n".join(failures.values())
