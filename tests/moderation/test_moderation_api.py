"""The /moderation routes, with and without the API key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modwatch.api.app import create_app
from modwatch.jobs import tasks
from modwatch.moderation import runtime
from tests.moderation.conftest import API_KEY, SPAM_TEXT

ROUTES = [
    ("GET", "/moderation/reports", None),
    ("GET", "/moderation/accounts/1", None),
    ("GET", "/moderation/domains", None),
    ("POST", "/moderation/evaluate", {"account": {"username": "x"}}),
    ("GET", "/moderation/settings", None),
    ("POST", "/moderation/settings", {"dry_run": True}),
    ("GET", "/moderation/rules", None),
    ("POST", "/moderation/reports/1/file", None),
    ("POST", "/moderation/reports/dry-run/file", None),
]


@pytest.fixture
def api(world):
    return TestClient(create_app(), headers={"X-API-Key": API_KEY})


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_every_route_needs_the_key(world, method, path, body):
    anonymous = TestClient(create_app())
    assert anonymous.request(method, path, json=body).status_code == 401
    assert anonymous.request(method, path, json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert runtime.current().dry_run is False  # the refused POST changed nothing


def test_reports_accounts_and_domains_after_a_report(world, api):
    spammer = world.add_spammer(domain="spam.example")
    clean = world.add_clean(domain=None)
    runtime.update({"dry_run": True})
    tasks.analyze_and_maybe_report(spammer, "manual")
    runtime.update({"dry_run": False})
    tasks.analyze_and_maybe_report(spammer, "manual")
    tasks.analyze_and_maybe_report(clean, "manual")

    everything = api.get("/moderation/reports").json()
    assert everything["total"] == 2 and [r["state"] for r in everything["reports"]] == ["filed", "dry_run"]
    filed = api.get("/moderation/reports", params={"state": "filed", "limit": 1}).json()
    assert filed["total"] == 1 and filed["reports"][0]["mastodon_report_id"] is not None
    assert api.get("/moderation/reports", params={"offset": 1, "limit": 1}).json()["reports"][0]["state"] == "dry_run"
    assert api.get("/moderation/reports", params={"state": "bogus"}).status_code == 422

    account = api.get(f"/moderation/accounts/{spammer}").json()
    assert account["analyses"][0]["score"] >= 10 and account["analyses"][0]["evidence"][0]["matched_text"]
    assert {r["state"] for r in account["reports"]} == {"filed", "dry_run"}
    assert "reported" in [entry["decision"] for entry in account["audit"]]
    assert api.get(f"/moderation/accounts/{clean}").json()["reports"] == []
    assert api.get("/moderation/accounts/999").status_code == 404
    assert api.get("/moderation/accounts/not-a-number").status_code == 422

    domains = api.get("/moderation/domains").json()
    assert domains["total"] == 1
    assert [(d["domain"], d["violations"]) for d in domains["domains"]] == [("spam.example", 1)]


def test_evaluate_scores_without_recording_or_filing(world, api):
    body = {"account": {"id": "42", "username": "deals", "note": "whatsapp me"},
            "statuses": [{"id": "1", "content": f"<p>{SPAM_TEXT}</p>"}]}
    result = api.post("/moderation/evaluate", json=body).json()
    assert result["would_report"] is True and result["score"] >= result["threshold"]
    assert "crypto-scam" in result["rule_names"] and result["status_ids"] == ["1"]
    assert api.post("/moderation/evaluate", json={"account": {"username": "walker"}}).json()["would_report"] is False
    assert api.get("/moderation/accounts/42").status_code == 404
    assert world.filed() == []


@pytest.mark.parametrize("body,reason", [
    ({}, "account"),
    ({"account": {"id": "42"}}, "username"),
    ({"account": {"username": "x", "id": "abc"}}, "id"),
    ({"account": {"username": "x"}, "statuses": [{"content": "hi"}]}, "id"),
    ({"account": {"username": "x"}, "statuses": [{"id": "1"}, {"id": "1"}]}, "unique"),
    ({"account": {"username": "x"}, "statuses": [{"id": str(i)} for i in range(201)]}, "statuses"),
])
def test_evaluate_rejects_bad_input_with_reasons(api, body, reason):
    response = api.post("/moderation/evaluate", json=body)
    assert response.status_code == 422 and reason in response.text


def test_settings_toggle_at_runtime(world, api):
    before = api.get("/moderation/settings").json()
    assert before["dry_run"] is False and before["panic_stop"] is False
    assert before["effective_report_threshold"] == 10  # the default rules file's threshold

    after = api.post("/moderation/settings", json={"panic_stop": True, "report_threshold": 4.5}).json()
    assert after["panic_stop"] is True and after["effective_report_threshold"] == 4.5
    assert runtime.current().panic_stop is True
    assert api.post("/moderation/settings", json={"report_threshold": None}).json()["effective_report_threshold"] == 10

    for bad in ({}, {"dry_run": "yes"}, {"report_threshold": 0}, {"panic": True}):
        assert api.post("/moderation/settings", json=bad).status_code == 422


def test_rules_show_the_active_set_and_its_hash(world, api):
    rules = api.get("/moderation/rules").json()
    assert len(rules["hash"]) == 64 and rules["report_threshold"] == 10
    assert "crypto-scam" in [rule["name"] for rule in rules["rules"]]
