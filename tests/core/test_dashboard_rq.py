"""rq-dashboard reads what the installed RQ writes: every page and JSON endpoint an operator uses answers,
with jobs in each registry (queued, started-and-failed, finished, scheduled, deferred) and a worker. Run on RQ 2.x
and in CI's RQ 3 job: the test that shows whether rq-dashboard still blocks an upgrade."""

from __future__ import annotations

from datetime import timedelta

from core.support import API_KEY
from modwatch.connection import get_redis
from modwatch.jobs.queues import WEBHOOKS, get_queue
from modwatch.jobs.worker import build_worker

AUTH = {"Authorization": "Basic " + __import__("base64").b64encode(f"admin:{API_KEY}".encode()).decode()}
REGISTRIES = ("queued", "failed", "finished", "scheduled", "deferred", "started", "canceled")


def test_dashboard_pages_and_data_answer_for_every_registry(core_env):
    from rq_dashboard.web import setup_rq_connection

    from modwatch.dashboard import build_dashboard
    from modwatch.settings import get_settings

    queue = get_queue(WEBHOOKS)
    finished = queue.enqueue("core.jobfuncs.add", 1, 2)
    failed = queue.enqueue("core.no_such_module.function")
    build_worker(get_redis(), [WEBHOOKS], simple=True).work(burst=True, with_scheduler=False)
    queued = queue.enqueue("core.jobfuncs.add", 2, 3)
    queue.enqueue_in(timedelta(hours=1), "core.jobfuncs.add", 3, 4)
    queue.enqueue("core.jobfuncs.add", 4, 5, depends_on=queued)
    assert finished.get_status(refresh=True) == "finished" and failed.get_status(refresh=True) == "failed"

    app = build_dashboard(get_settings())
    setup_rq_connection(app)
    client = app.test_client()
    pages = ["/", "/0/view/queues", "/0/view/workers", "/0/data/queues.json", "/0/data/workers.json",
             f"/0/view/job/{failed.id}", f"/0/data/job/{failed.id}.json", f"/0/data/job/{finished.id}.json"]
    for registry in REGISTRIES:
        pages.append(f"/0/view/jobs/{WEBHOOKS}/{registry}/8/asc/1")
        pages.append(f"/0/data/jobs/{WEBHOOKS}/{registry}/8/asc/1.json")
    answers = {page: client.get(page, headers=AUTH, follow_redirects=True) for page in pages}
    assert {page: answer.status_code for page, answer in answers.items()} == dict.fromkeys(pages, 200)
    listed = answers[f"/0/data/jobs/{WEBHOOKS}/failed/8/asc/1.json"].get_json()
    assert [job["id"] for job in listed["jobs"]] == [failed.id]
    queues = answers["/0/data/queues.json"].get_json()
    assert {item["name"]: item["count"] for item in queues["queues"]}[WEBHOOKS] == 1
