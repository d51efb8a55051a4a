"""Bad input from hostile or careless clients: a 4xx with a reason, never a 500 or a silent wrong value
(issue 14: non-finite JSON, ids, requeue of a stopped job, a deleted webhook job's redelivery)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis
from rq.job import Job, JobStatus

from core.support import REDIS_URL, subprocess_env
from core.test_webhooks import envelope, post, sign
from isolation import wait_for
from modwatch.jobs.queues import get_queue
from modwatch.redis_keys import RUNTIME_KEY

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]
# (method, path, a body with a number where the route takes one; NUMBER is replaced)
NUMBER_ROUTES = [
    ("/jobs/trigger/analyze_and_maybe_report", b'{"account_id": "1", "x": NUMBER}'),
    ("/jobs/scheduled/reschedule", b'{"task_name": "record_queue_stats", "interval": NUMBER}'),
    ("/moderation/settings", b'{"report_threshold": NUMBER}'),
    ("/moderation/evaluate", b'{"account": {"username": "a", "score": NUMBER}, "statuses": []}'),
]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("path, template", NUMBER_ROUTES)
def test_non_finite_json_numbers_are_refused_with_a_reason(client, auth, path, template, number):
    response = client.post(path, content=template.replace(b"NUMBER", number),
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid" and "non-finite number" in error["ctx"]["error"]


def test_infinite_threshold_is_refused_and_nothing_changes(client, auth):
    before = client.get("/moderation/settings", headers=auth).json()
    response = client.post("/moderation/settings", content=b'{"report_threshold": 1e999}',
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert client.get("/moderation/settings", headers=auth).json() == before
    assert not redis.Redis.from_url(REDIS_URL).hexists(RUNTIME_KEY, "report_threshold")


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e999"])
def test_webhook_with_non_finite_number_is_400(client, number):
    body = b'{"event": "status.created", "object": {"id": "5", "score": ' + number + b"}}"
    response = post(client, body, sign(body))
    assert response.status_code == 400 and "non-finite" in response.json()["detail"]


@pytest.mark.parametrize("object_id", ["\u0661\u0662", "\u00b2", "\uff11", "1" * 21, "1\n", " 1", "-1", "1.0"])
def test_webhook_object_id_must_be_ascii_digits_at_most_20(client, object_id):
    body = envelope(object_id=object_id)
    response = post(client, body, sign(body))
    assert response.status_code == 400 and "object.id" in response.json()["detail"]
    assert redis.Redis.from_url(REDIS_URL).llen("rq:queue:webhooks") == 0


def test_webhook_object_id_of_20_digits_or_an_integer_is_accepted(client):
    for object_id in ("9" * 20, 109876543210987654):
        body = json.dumps({"event": "status.created", "object": {"id": object_id}}).encode()
        assert post(client, body, sign(body)).json()["status"] == "queued"


def test_deleted_webhook_job_redelivery_is_enqueued_again(client):
    """rq-dashboard's delete, then Mastodon's redelivery: queued again, not answered `duplicate` and lost."""
    body = envelope(object_id="777")
    first = post(client, body, sign(body)).json()
    assert post(client, body, sign(body)).json()["status"] == "duplicate"
    Job.fetch(first["job_id"], connection=redis.Redis.from_url(REDIS_URL)).delete()
    again = post(client, body, sign(body)).json()
    assert again["status"] == "queued" and again["job_id"] == first["job_id"]
    assert get_queue("webhooks").get_job_ids() == [first["job_id"]]
    assert post(client, body, sign(body)).json()["status"] == "duplicate"


def test_requeue_of_a_stopped_job_puts_it_back(client, auth):
    job = get_queue("moderation").enqueue("jobfuncs.sleep", 60)
    worker = subprocess.Popen([sys.executable, "-m", "modwatch.cli", "worker", "moderation"], env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = redis.Redis.from_url(REDIS_URL)
        wait_for(lambda: Job.fetch(job.id, connection=connection).get_status() == JobStatus.STARTED, "job started")
        assert client.post(f"/jobs/jobs/{job.id}/cancel", headers=auth).json()["status"] == "stopping"
        wait_for(lambda: Job.fetch(job.id, connection=connection).get_status() == JobStatus.STOPPED, "job stopped")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    response = client.post(f"/jobs/jobs/{job.id}/requeue", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued" and get_queue("moderation").get_job_ids() == [job.id]
    assert job.id not in get_queue("moderation").failed_job_registry.get_job_ids()


@pytest.fixture(params=["sqlite", "postgresql"])
def writable_and_read_only(request, core_env):
    """(URL, the same database read-only): SQLite opened read-only, or PostgreSQL refusing writes in a schema
    of the test's own, as a hot standby answers."""
    if request.param == "sqlite":
        url = os.environ["DATABASE_URL"]
        yield url, f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
        return
    from isolation import postgres_schema

    with postgres_schema("modwatch_readyz_test") as url:
        yield url(), url("default_transaction_read_only=on")


def test_readyz_fails_when_the_database_answers_but_refuses_writes(writable_and_read_only, monkeypatch):
    from fastapi.testclient import TestClient

    from isolation import reset_caches
    from modwatch.api.app import create_app
    from modwatch.storage.db import upgrade_database

    url, read_only = writable_and_read_only
    monkeypatch.setenv("DATABASE_URL", url)
    reset_caches()
    upgrade_database()
    with TestClient(create_app()) as client:
        assert client.get("/readyz").json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}
        monkeypatch.setenv("DATABASE_URL", read_only)
        reset_caches()
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["redis"] == "ok" and answer.json()["checks"]["database"].startswith("error")
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/1")
        reset_caches()
        assert client.get("/readyz").json()["checks"]["redis"].startswith("error")


def test_runtime_switch_changes_are_audited_and_show_their_source(client, auth):
    import hashlib

    from core.support import API_KEY

    fingerprint = "key:" + hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
    before = client.get("/moderation/settings", headers=auth).json()
    assert before["sources"] == {"dry_run": {"source": "env"}, "panic_stop": {"source": "env"},
                                 "report_threshold": {"source": "rules_file"}}
    assert before["changes"] == []
    after = client.post("/moderation/settings", json={"dry_run": False, "report_threshold": 4.5}, headers=auth).json()
    assert after["sources"]["dry_run"]["source"] == "runtime" and after["sources"]["dry_run"]["by"] == fingerprint
    assert after["sources"]["report_threshold"]["since"] and after["sources"]["panic_stop"] == {"source": "env"}
    assert {(c["by"], c["change"]) for c in after["changes"]} == {
        (fingerprint, "dry_run: true -> false"), (fingerprint, "report_threshold: unset -> 4.5")}
    assert all(c["at"] for c in after["changes"])
    cleared = client.post("/moderation/settings", json={"report_threshold": None}, headers=auth).json()
    assert cleared["sources"]["report_threshold"] == {"source": "rules_file"}
    assert cleared["changes"][0]["change"] == "report_threshold: 4.5 -> unset"
    assert API_KEY not in json.dumps(cleared)


def test_a_restart_with_a_new_environment_is_audited_and_overrides_are_announced(core_env, tmp_path):
    """Overrides stay in Redis across restarts: the API says so at start, and an env value that changed is audited."""
    from core.support import API_KEY
    from faults.support import modwatch, stop
    from isolation import free_port, wait_http

    def start(dry_run: str) -> str:
        port, log = free_port(), tmp_path / f"api-{dry_run}.log"
        process = modwatch("api", "--port", str(port), env={**subprocess_env(), "DRY_RUN": dry_run}, log=log)
        try:
            wait_http(f"http://127.0.0.1:{port}/livez", process)
            if dry_run == "true":
                import httpx

                httpx.post(f"http://127.0.0.1:{port}/moderation/settings", json={"panic_stop": True},
                           headers={"X-API-Key": API_KEY}, timeout=30).raise_for_status()
        finally:
            stop(process)
        return log.read_text()

    start("true")
    second = start("false")
    [announced] = [line for line in map(json.loads, second.splitlines()) if line["event"] == "runtime_overrides_in_force"]
    assert announced["overrides"] == {"panic_stop": "1"} and announced["set"]["panic_stop"]["by"].startswith("key:")
    from modwatch.storage.db import session_scope
    from modwatch.storage.models import AuditEntry

    with session_scope() as session:
        entries = [(e.source, e.reason) for e in session.query(AuditEntry).order_by(AuditEntry.id)]
    assert ("env", "dry_run: true -> false") in entries
    assert entries[0][1] == "panic_stop: false -> true" and entries[0][0].startswith("key:")
