"""Bad input from hostile or careless clients: a 4xx with a reason, never a 500 or a silent wrong value
(issue 14: non-finite JSON, ids, requeue of a stopped job, a deleted webhook job's redelivery)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import redis
from rq.job import Job, JobStatus

from core.support import REDIS_URL, subprocess_env
from core.test_webhooks import envelope, post, sign
from isolation import wait_for
from modwatch.jobs.queues import get_queue

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
    assert not redis.Redis.from_url(REDIS_URL).hexists("modwatch:runtime", "report_threshold")


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
