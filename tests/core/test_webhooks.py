import hashlib
import hmac
import json

import pytest
import redis
from rq.job import Job

from isolation import mastodon_recordings, reset_caches
from core.support import REDIS_URL, WEBHOOK_SECRET, run_worker_burst

URL = "/webhooks/mastodon_events"
WEBHOOKS = mastodon_recordings() / "webhooks"


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(client, body: bytes, signature: str | None = None, **headers):
    headers = {"Content-Type": "application/json", **headers}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    return client.post(URL, content=body, headers=headers)


def recorded_signatures() -> dict[str, str]:
    signatures = {}
    for line in (WEBHOOKS / "signatures.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].startswith("X-Hub-Signature: "):
            signatures[parts[0]] = parts[1].removeprefix("X-Hub-Signature: ")
    return signatures


def envelope(event: str = "status.created", object_id: str = "1001") -> bytes:
    return json.dumps({"event": event, "created_at": "2026-11-28T00:00:00Z", "object": {"id": object_id}}).encode()


@pytest.mark.parametrize("name", ["status.created.body.json", "report.created.body.json", "account.created.body.json"])
def test_recorded_deliveries_are_accepted_and_run_by_a_real_worker(simulator, client, name):
    body = (WEBHOOKS / name).read_bytes()
    signature = recorded_signatures()[name]
    response = post(client, body, signature)
    assert response.status_code == 202, response.text
    answer = response.json()
    event = json.loads(body)["event"]
    assert answer["status"] == "queued" and answer["event"] == event
    job = Job.fetch(answer["job_id"], connection=redis.Redis.from_url(REDIS_URL))
    assert job.origin == "webhooks"
    assert job.args[0]["id"] == json.loads(body)["object"]["id"]
    worker = run_worker_burst("webhooks")
    assert worker.returncode == 0, worker.stderr
    job.refresh()
    assert job.get_status() == "finished"


def test_redelivery_answers_the_same_job_id_and_enqueues_once(client):
    body = envelope(object_id="777")
    first = post(client, body, sign(body)).json()
    second = post(client, body, sign(body)).json()
    assert first["status"] == "queued" and second["status"] == "duplicate"
    assert first["job_id"] == second["job_id"] == "wh-status_created-777"
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:webhooks") == 1


def test_a_redelivery_after_the_job_ran_is_still_a_duplicate_within_mastodons_retry_window(client):
    from modwatch.connection import get_redis
    from modwatch.jobs.queues import WEBHOOKS
    from modwatch.jobs.worker import build_worker

    body = envelope("account.created", "888")
    first = post(client, body, sign(body)).json()
    build_worker(get_redis(), [WEBHOOKS], simple=True).work(burst=True, with_scheduler=False)
    connection = redis.Redis.from_url(REDIS_URL)
    assert Job.fetch(first["job_id"], connection=connection).get_status() in ("finished", "failed")
    # Mastodon's 16 Sidekiq retries span about 2.1 days (app/workers/webhooks/delivery_worker.rb).
    assert connection.ttl(f"rq:job:{first['job_id']}") > 2.1 * 24 * 3600
    again = post(client, body, sign(body)).json()
    assert again == {**again, "status": "duplicate", "job_id": first["job_id"]}
    assert connection.llen("rq:queue:webhooks") == 0


def test_same_object_different_event_is_not_a_duplicate(client):
    status = envelope("status.created", "5")
    account = envelope("account.created", "5")
    assert post(client, status, sign(status)).json()["status"] == "queued"
    assert post(client, account, sign(account)).json()["status"] == "queued"


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha1=abc", "sha256=" + "0" * 64, sign(b"other body"), sign(envelope(), "wrong-secret")],
)
def test_missing_or_wrong_signature_is_401(client, signature):
    response = post(client, envelope(), signature)
    assert response.status_code == 401
    assert "X-Hub-Signature" in response.json()["detail"]
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:webhooks") == 0


def test_no_secret_configured_fails_closed(client, monkeypatch):
    monkeypatch.delenv("WEBHOOK_SECRET")
    reset_caches()
    from fastapi.testclient import TestClient

    from modwatch.api.app import create_app

    with TestClient(create_app()) as unconfigured:
        response = post(unconfigured, envelope(), sign(envelope()))
    assert response.status_code == 503
    assert "WEBHOOK_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"object": {"id": "1"}}', "'event'"),
        (b'{"event": "status.created", "object": "x"}', "'object'"),
        (b'{"event": "status.created", "object": {"id": "abc"}}', "object.id"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_envelope_is_400_with_reason(client, body, reason):
    response = post(client, body, sign(body))
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_oversized_body_is_413(client):
    body = b'{"event": "status.created", "object": {"id": "1", "content": "' + b"x" * 1_100_000 + b'"}}'
    response = post(client, body, sign(body))
    assert response.status_code == 413


def test_wrong_content_type_is_415(client):
    body = envelope()
    response = post(client, body, sign(body), **{"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_unknown_event_is_acknowledged_not_queued(client):
    body = envelope("account.approved")
    response = post(client, body, sign(body))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:webhooks") == 0


def test_redis_down_answers_503_with_retry_after(client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_caches()
    body = envelope(object_id="4242")
    response = post(client, body, sign(body))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    # Redis back: the redelivery is accepted, so nothing was lost.
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    reset_caches()
    assert post(client, body, sign(body)).json()["status"] == "queued"


def test_webhook_outcomes_are_counted(client):
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value(
            "modwatch_webhook_deliveries_total", {"event": "status.created", "outcome": outcome}) or 0.0

    before = count("accepted"), count("duplicate")
    body = envelope(object_id="31337")
    post(client, body, sign(body))
    post(client, body, sign(body))
    assert (count("accepted"), count("duplicate")) == (before[0] + 1, before[1] + 1)
