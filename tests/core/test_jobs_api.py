import pytest
import redis
from rq.job import Job

from core.support import REDIS_URL, run_worker_burst
from isolation import wait_for
from modwatch.jobs.queues import get_queue

PROTECTED = [
    ("get", "/jobs/queues", None),
    ("get", "/jobs/jobs?queue=webhooks", None),
    ("get", "/jobs/jobs/some-id", None),
    ("get", "/jobs/jobs/some-id/trace", None),
    ("post", "/jobs/jobs/some-id/cancel", None),
    ("post", "/jobs/jobs/some-id/requeue", None),
    ("get", "/jobs/scheduled", None),
    ("post", "/jobs/scheduled/reschedule", {"task_name": "record_queue_stats", "run_now": True}),
    ("post", "/jobs/trigger/record_queue_stats", {}),
    ("get", "/jobs/trigger", None),
    ("get", "/jobs/workers", None),
]


@pytest.mark.parametrize("method, path, body", PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}])
def test_every_jobs_route_needs_the_key(client, method, path, body, headers):
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, body", PROTECTED)
def test_every_jobs_route_accepts_the_key(client, auth, method, path, body):
    response = client.request(method, path, json=body, headers=auth, follow_redirects=False)
    assert response.status_code in (200, 202, 404), response.text  # 404: the job does not exist


def test_bearer_form_of_the_key(client, auth):
    response = client.get("/jobs/queues", headers={"Authorization": f"Bearer {auth['X-API-Key']}"})
    assert response.status_code == 200


def test_queues_count_jobs_per_status(client, auth):
    get_queue("moderation").enqueue("jobfuncs.add", 1, 2)
    queues = {queue["name"]: queue for queue in client.get("/jobs/queues", headers=auth).json()}
    assert list(queues) == ["monitoring", "webhooks", "moderation"]
    assert queues["moderation"]["counts"]["queued"] == 1
    assert queues["webhooks"]["counts"]["queued"] == 0


def test_list_jobs_is_paginated(client, auth):
    queue = get_queue("moderation")
    ids = [queue.enqueue("jobfuncs.add", n, n).id for n in range(7)]
    page = client.get("/jobs/jobs", params={"queue": "moderation", "status": "queued", "offset": 2, "limit": 3},
                      headers=auth).json()
    assert page["total"] == 7
    assert [job["id"] for job in page["jobs"]] == ids[2:5]
    assert page["jobs"][0]["function"] == "jobfuncs.add"


def test_list_jobs_unknown_queue_or_status(client, auth):
    assert client.get("/jobs/jobs", params={"queue": "nope"}, headers=auth).status_code == 404
    assert client.get("/jobs/jobs", params={"queue": "webhooks", "status": "lost"}, headers=auth).status_code == 422


def test_job_detail_and_unknown_job(client, auth):
    job = get_queue("moderation").enqueue("jobfuncs.add", 2, 3)
    assert run_worker_burst("moderation").returncode == 0
    detail = client.get(f"/jobs/jobs/{job.id}", headers=auth).json()
    assert detail["status"] == "finished" and detail["result"] == "5"
    assert detail["queue"] == "moderation" and detail["started_at"] and detail["ended_at"]
    assert "recent_runs" not in detail  # recurring jobs only: absent, not null
    assert client.get("/jobs/jobs/does-not-exist", headers=auth).status_code == 404
    assert client.get("/jobs/jobs/bad%20id!", headers=auth).status_code == 404


def test_cancel_queued_job_then_409(client, auth):
    job = get_queue("moderation").enqueue("jobfuncs.add", 1, 1)
    response = client.post(f"/jobs/jobs/{job.id}/cancel", headers=auth)
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert get_queue("moderation").count == 0
    assert client.post(f"/jobs/jobs/{job.id}/cancel", headers=auth).status_code == 409


def test_requeue_failed_job_but_not_finished(client, auth):
    failing = get_queue("moderation").enqueue("jobfuncs.fail", "on purpose")
    finished = get_queue("moderation").enqueue("jobfuncs.add", 1, 1)
    assert run_worker_burst("moderation").returncode == 0
    detail = client.get(f"/jobs/jobs/{failing.id}", headers=auth).json()
    assert detail["status"] == "failed" and "on purpose" in detail["exc_info"]
    assert client.post(f"/jobs/jobs/{finished.id}/requeue", headers=auth).status_code == 409
    response = client.post(f"/jobs/jobs/{failing.id}/requeue", headers=auth)
    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert get_queue("moderation").get_job_ids() == [failing.id]


def test_triggerable_jobs_are_listed_with_their_argument_schema(client, auth):
    listed = {item["task_name"]: item for item in client.get("/jobs/trigger", headers=auth).json()}
    assert set(listed) == {"poll_admin_accounts", "poll_admin_accounts_local", "record_queue_stats",
                           "analyze_and_maybe_report", "sync_report_outcomes"}
    assert listed["analyze_and_maybe_report"]["arguments"]["required"] == ["account_id"]
    assert listed["record_queue_stats"]["queue"] == "monitoring"


def test_trigger_only_allowlisted_jobs(client, auth):
    assert client.post("/jobs/trigger/jobfuncs.fail", json={}, headers=auth).status_code == 404
    assert client.post("/jobs/trigger/process_new_status", json={}, headers=auth).status_code == 404
    bad = client.post("/jobs/trigger/analyze_and_maybe_report", json={"account_id": "12; rm"}, headers=auth)
    assert bad.status_code == 422
    extra = client.post("/jobs/trigger/record_queue_stats", json={"x": 1}, headers=auth)
    assert extra.status_code == 422
    ok = client.post("/jobs/trigger/analyze_and_maybe_report", json={"account_id": "1234"}, headers=auth)
    assert ok.status_code == 202
    job = Job.fetch(ok.json()["job_id"], connection=redis.Redis.from_url(REDIS_URL))
    assert job.kwargs == {"account_id": "1234", "source": "manual"} and job.origin == "moderation"


def test_workers_lists_a_running_worker(client, auth):
    import subprocess
    import sys

    from core.support import subprocess_env

    worker = subprocess.Popen([sys.executable, "-m", "modwatch.cli", "worker", "webhooks"], env=subprocess_env())
    try:
        def registered_with_a_state() -> list[dict] | None:
            # RQ registers a worker's birth before its first state: the API shows "?" in between.
            workers = client.get("/jobs/workers", headers=auth).json()
            return workers if workers and workers[0]["state"] != "?" else None

        workers = wait_for(registered_with_a_state, "the worker registered with its state", 30)
        assert len(workers) == 1
        assert workers[0]["queues"] == ["webhooks"] and workers[0]["pid"] == worker.pid
        assert workers[0]["state"] in ("started", "idle", "busy")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_offsets_past_any_listing_are_refused_not_a_500(client, auth):
    huge = {"queue": "webhooks", "offset": 2**70}
    assert client.get("/jobs/jobs", params=huge, headers=auth).status_code == 422
    far = client.get("/jobs/jobs", params={"queue": "webhooks", "offset": 10**12, "limit": 500}, headers=auth)
    assert far.status_code == 200 and far.json()["jobs"] == []
    for path in ("/moderation/reports", "/moderation/domains"):
        assert client.get(path, params={"offset": 2**64}, headers=auth).status_code == 422
        assert client.get(path, params={"offset": 10**12}, headers=auth).status_code == 200
