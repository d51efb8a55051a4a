"""Server spans, request ids and trace lookup through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind
from rq.job import Job

from modwatch.telemetry.job_traces import CONTEXT_KEY, REQUEST_ID_KEY
from isolation import mastodon_recordings
from tracing.conftest import API_KEY

WEBHOOKS = mastodon_recordings() / "webhooks"
STATUS_SIGNATURE = "sha256=5d1392ea7de799884b1e76f21d2f021904a1d8357f234ecdd79cae2bc6cff237"


@pytest.fixture
def client(tracing_env):
    from modwatch.api.app import create_app
    from modwatch.storage.db import upgrade_database

    upgrade_database()
    with TestClient(create_app()) as test_client:
        yield test_client


def post_webhook(client, **headers):
    body = (WEBHOOKS / "status.created.body.json").read_bytes()
    return client.post("/webhooks/mastodon_events", content=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature": STATUS_SIGNATURE, **headers,
    })


def test_webhook_is_one_trace_from_request_to_send(client, spans, redis_conn):
    answer = post_webhook(client, **{"X-Request-ID": "req-42"})
    assert answer.status_code == 202
    [server] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert server.name == "POST /webhooks/mastodon_events"
    assert server.attributes["modwatch.request_id"] == "req-42"
    assert answer.json()["trace_id"] == format(server.context.trace_id, "032x")
    [send] = [span for span in spans.get_finished_spans() if span.name == "send webhooks"]
    assert send.parent.span_id == server.context.span_id
    # The context was saved with the job inside the dedupe transaction.
    job = Job.fetch(answer.json()["job_id"], connection=redis_conn)
    assert job.meta[CONTEXT_KEY]["traceparent"].split("-")[1] == answer.json()["trace_id"]
    assert job.meta[REQUEST_ID_KEY] == "req-42"


def test_server_spans_are_named_by_route_template(client, spans):
    assert client.get("/jobs/jobs/no-such-job", headers={"X-API-Key": API_KEY}).status_code == 404
    [server] = spans.get_finished_spans()
    assert server.name == "GET /jobs/jobs/{job_id}"
    assert server.attributes["http.route"] == "/jobs/jobs/{job_id}"
    # Stable HTTP semantic conventions, as the Mastodon client's CLIENT spans.
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.response.status_code"] == 404
    assert "http.method" not in server.attributes and "http.status_code" not in server.attributes


def test_probes_and_scrapes_are_not_traced(client, spans):
    for path in ("/metrics", "/livez", "/readyz"):
        assert client.get(path).status_code == 200
    assert spans.get_finished_spans() == ()


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/livez", headers={"X-Request-ID": "abc.DEF-1"}).headers["X-Request-ID"] == "abc.DEF-1"
    generated = client.get("/livez").headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    # Anything that does not look like an id is replaced, not echoed into logs and headers.
    replaced = client.get("/livez", headers={"X-Request-ID": "x" * 200}).headers["X-Request-ID"]
    assert replaced != "x" * 200 and len(replaced) == 32


def test_job_view_and_trace_redirect_carry_the_trace_id(client):
    answer = post_webhook(client)
    job_id, trace_id = answer.json()["job_id"], answer.json()["trace_id"]
    detail = client.get(f"/jobs/jobs/{job_id}", headers={"X-API-Key": API_KEY}).json()
    assert detail["trace_id"] == trace_id
    assert detail["trace_ids"] == {"created": trace_id, "executions": []}
    redirect = client.get(f"/jobs/jobs/{job_id}/trace", headers={"X-API-Key": API_KEY}, follow_redirects=False)
    assert redirect.status_code == 307
    assert trace_id in redirect.headers["location"]
