"""The API's own metrics: HTTP requests by route template, webhook intake by outcome, OpenMetrics on ask."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from prometheus_client import REGISTRY

SECRET = "metrics-test-webhook-secret"


@pytest.fixture
def api(metrics_env, monkeypatch):
    from fastapi.testclient import TestClient

    from modwatch.api.app import create_app

    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("API_KEY", "metrics-test-api-key")
    from isolation import reset_caches

    reset_caches()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_template_not_raw_path(api):
    job_route = {"route": "/jobs/jobs/{job_id}", "method": "GET", "status": "401"}
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    before = count("modwatch_http_requests_total", **job_route), count("modwatch_http_requests_total", **unmatched)
    durations = count("modwatch_http_request_duration_seconds_count", **job_route)

    assert api.get("/jobs/jobs/one").status_code == 401
    assert api.get("/jobs/jobs/two").status_code == 401
    assert api.get("/no/such/path").status_code == 404

    assert count("modwatch_http_requests_total", **job_route) - before[0] == 2
    assert count("modwatch_http_requests_total", **unmatched) - before[1] == 1
    assert count("modwatch_http_request_duration_seconds_count", **job_route) - durations == 2
    assert count("modwatch_http_requests_total", route="/jobs/jobs/one", method="GET", status="401") == 0


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_webhook_deliveries_are_counted_by_event_and_outcome(api):
    body = json.dumps({"event": "status.created", "created_at": "2024-01-01T00:00:00Z", "object": {"id": "4242"}}).encode()
    outcomes = {
        ("status.created", "accepted"): 1,
        ("status.created", "duplicate"): 1,
        ("unknown", "bad_signature"): 1,
        ("unknown", "malformed"): 1,
    }
    before = {key: count("modwatch_webhook_deliveries_total", event=key[0], outcome=key[1]) for key in outcomes}

    assert api.post("/webhooks/mastodon_events", content=body, headers=_signed(body)).status_code == 202
    assert api.post("/webhooks/mastodon_events", content=body, headers=_signed(body)).status_code == 202
    bad = {"X-Hub-Signature": "sha256=" + "0" * 64, "Content-Type": "application/json"}
    assert api.post("/webhooks/mastodon_events", content=body, headers=bad).status_code == 401
    assert api.post("/webhooks/mastodon_events", content=b"[1]", headers=_signed(b"[1]")).status_code == 400

    after = {key: count("modwatch_webhook_deliveries_total", event=key[0], outcome=key[1]) for key in outcomes}
    assert {key: after[key] - before[key] for key in outcomes} == outcomes


def test_metrics_endpoint_speaks_openmetrics_when_asked(api):
    text = api.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    assert "modwatch_queue_stats_last_success_timestamp_seconds" not in text.text  # never recorded yet
    openmetrics = api.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert "modwatch_dry_run 1.0" in openmetrics.text
