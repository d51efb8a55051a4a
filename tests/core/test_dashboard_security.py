"""rq-dashboard's state-changing routes against cross-site requests and in read-only mode (issue 14)."""

from __future__ import annotations

import base64

import pytest
import redis

from core.support import REDIS_URL
from modwatch.jobs.queues import get_queue
from modwatch.settings import load_settings

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:dash-secret").decode()}
EVIL = {"Origin": "http://evil.example"}
OWN = {"Origin": "http://localhost"}


@pytest.fixture
def dashboard(core_env):
    def build(**settings):
        from rq_dashboard.web import setup_rq_connection

        from modwatch.dashboard import build_dashboard

        app = build_dashboard(load_settings(dashboard_password="dash-secret", **settings))
        setup_rq_connection(app)
        return app.test_client()

    return build


def failed_job() -> str:
    queue = get_queue("moderation")
    job = queue.enqueue("jobfuncs.add", 1, 2)
    queue.remove(job)
    job.set_status("failed")
    queue.failed_job_registry.add(job, ttl=600)
    return job.id


# (method, path), each one that changes the queues; {job} is a failed job's id.
STATE_CHANGING = [
    ("POST", "/queue/moderation/failed/empty"),
    ("POST", "/queue/moderation/queued/empty"),
    ("POST", "/job/{job}/delete"),
    ("POST", "/job/{job}/requeue"),
    ("GET", "/requeue/moderation"),
    ("POST", "/requeue/moderation"),
    ("POST", "/queue/moderation/compact"),
]


def still_failed(job_id: str) -> bool:
    return job_id in get_queue("moderation").failed_job_registry.get_job_ids() and \
        redis.Redis.from_url(REDIS_URL).exists(f"rq:job:{job_id}") == 1


@pytest.mark.parametrize("method, path", STATE_CHANGING)
def test_read_only_by_default_refuses_every_state_change_even_from_its_own_pages(dashboard, method, path):
    client, job_id = dashboard(), failed_job()
    answer = client.open(path.format(job=job_id), method=method, headers={**AUTH, **OWN})
    assert answer.status_code == 403 and b"read-only" in answer.data
    assert still_failed(job_id)


@pytest.mark.parametrize("method, path", STATE_CHANGING)
@pytest.mark.parametrize("origin", [EVIL, {"Referer": "http://evil.example/page"}, {"Origin": "null"}, {},
                                    {"Sec-Fetch-Site": "cross-site", **OWN}], ids=["origin", "referer", "null", "none", "fetch-site"])
def test_with_writes_on_a_cross_site_request_is_refused(dashboard, method, path, origin):
    client, job_id = dashboard(dashboard_read_only=False), failed_job()
    answer = client.open(path.format(job=job_id), method=method, headers={**AUTH, **origin})
    assert answer.status_code == 403 and b"cross-site" in answer.data
    assert still_failed(job_id)


@pytest.mark.parametrize("headers", [OWN, {"Referer": "http://localhost/0/view/jobs"}, {"Sec-Fetch-Site": "same-origin"}])
def test_with_writes_on_the_dashboards_own_pages_can_requeue(dashboard, headers):
    client, job_id = dashboard(dashboard_read_only=False), failed_job()
    answer = client.post(f"/job/{job_id}/requeue", headers={**AUTH, **headers})
    assert answer.status_code == 200 and answer.get_json()["status"] == "OK"
    assert get_queue("moderation").get_job_ids() == [job_id]


def test_read_only_dashboard_still_shows_everything(dashboard):
    client, job_id = dashboard(), failed_job()
    assert client.get("/", headers=AUTH).status_code == 200
    data = client.get("/0/data/jobs/moderation/failed/8/asc/1.json", headers=AUTH).get_json()
    assert [job["id"] for job in data["jobs"]] == [job_id]
    assert client.get("/", headers=EVIL).status_code == 401  # no credentials, nothing at all
