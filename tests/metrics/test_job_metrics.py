"""Job metrics from a real forking worker, scraped from its /metrics endpoint."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from rq import Retry
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus

from conftest import scrape
from isolation import wait_for
from modwatch.jobs.monitoring import record_queue_stats
from modwatch.jobs.enqueue import enqueue
from modwatch.jobs.queues import get_queue
from modwatch.redis_keys import QUEUE_STATS_LAST_SUCCESS_KEY

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parse_text(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def finished_total(port: int) -> float:
    return sum(v for (name, _), v in samples(scrape(port)).items() if name == "modwatch_jobs_finished_total")


def test_forking_worker_counts_outcomes_waits_run_times_and_horse_metrics(worker_process, db):
    webhooks, moderation, monitoring = get_queue("webhooks"), get_queue("moderation"), get_queue("monitoring")
    stopped = moderation.enqueue("metricjobs.sleep", 60)
    for _ in range(3):
        webhooks.enqueue("metricjobs.succeed")
    webhooks.enqueue("metricjobs.fail")
    webhooks.enqueue("metricjobs.fail", retry=Retry(max=1))
    webhooks.enqueue("metricjobs.sleep", 5, job_timeout=1)
    webhooks.enqueue("metricjobs.call_mastodon")
    webhooks.enqueue("metricjobs.call_mastodon")
    webhooks.enqueue("metricjobs.enqueue_child")
    traced = monitoring.enqueue("metricjobs.succeed", meta={"trace_id_created": TRACE_ID})
    enqueue(record_queue_stats)

    wait_for(lambda: stopped.get_status() == JobStatus.STARTED, "the sleeper to start")
    send_stop_job_command(db, stopped.id)
    # 3 succeed + 3 fail attempts + timeout + 2 mastodon + parent + child + traced + stats + stopped
    wait_for(lambda: finished_total(worker_process.port) == 14, "14 recorded attempts")

    scraped = samples(scrape(worker_process.port))
    finished = "modwatch_jobs_finished_total"
    assert value(scraped, finished, queue="webhooks", function="succeed", outcome="succeeded") == 3
    assert value(scraped, finished, queue="webhooks", function="fail", outcome="failed") == 2
    assert value(scraped, finished, queue="webhooks", function="fail", outcome="retried") == 1
    assert value(scraped, finished, queue="webhooks", function="sleep", outcome="timed_out") == 1
    assert value(scraped, finished, queue="moderation", function="sleep", outcome="stopped") == 1
    assert value(scraped, finished, queue="moderation", function="succeed", outcome="succeeded") == 1
    assert value(scraped, finished, queue="monitoring", function="record_queue_stats", outcome="succeeded") == 1

    # One wait and one run time per attempt.
    assert value(scraped, "modwatch_job_wait_seconds_count", queue="webhooks", function="succeed") == 3
    assert value(scraped, "modwatch_job_wait_seconds_count", queue="webhooks", function="fail") == 3
    duration = "modwatch_job_duration_seconds"
    assert value(scraped, f"{duration}_count", queue="webhooks", function="fail", outcome="failed") == 2
    assert value(scraped, f"{duration}_count", queue="webhooks", function="sleep", outcome="timed_out") == 1
    # The timed-out attempt ran at least its 1 s timeout and far less than its 5 s sleep.
    assert value(scraped, f"{duration}_bucket", queue="webhooks", function="sleep", outcome="timed_out", le="0.5") == 0
    assert value(scraped, f"{duration}_bucket", queue="webhooks", function="sleep", outcome="timed_out", le="5.0") == 1

    # What the horses recorded reached the worker's registry, once each.
    mastodon = {"endpoint": "/api/v2/admin/accounts", "method": "GET"}
    assert value(scraped, "modwatch_mastodon_requests_total", **mastodon, status="200") == 2
    assert value(scraped, "modwatch_mastodon_request_duration_seconds_count", **mastodon) == 2
    assert value(scraped, "modwatch_mastodon_request_duration_seconds_sum", **mastodon) == 0.4
    assert value(scraped, "modwatch_mastodon_request_duration_seconds_bucket", **mastodon, le="0.1") == 0
    assert value(scraped, "modwatch_mastodon_request_duration_seconds_bucket", **mastodon, le="0.25") == 2
    assert value(scraped, "modwatch_accounts_scanned_total", source="poll_remote") == 6
    assert value(scraped, "modwatch_jobs_enqueued_total", queue="moderation", function="succeed") == 1
    assert value(scraped, "modwatch_build_info", version=__import__("modwatch").__version__, process="worker") == 1

    # record_queue_stats ran in a horse and stored when it succeeded (no expiry: it goes stale instead).
    assert float(db.get(QUEUE_STATS_LAST_SUCCESS_KEY)) > time.time() - 300
    assert db.ttl(QUEUE_STATS_LAST_SUCCESS_KEY) == -1

    # The exemplar on the traced job's histograms carries its trace id, in OpenMetrics only.
    meta = Job.fetch(traced.id, connection=db).meta
    expected = (meta.get("trace_ids_executions") or [None])[-1] or meta["trace_id_created"]
    openmetrics = scrape(worker_process.port, openmetrics=True)
    exemplars = [
        sample.exemplar.labels["trace_id"]
        for family in parse_openmetrics(openmetrics)
        if family.name in ("modwatch_job_duration_seconds", "modwatch_job_wait_seconds")
        for sample in family.samples
        if sample.exemplar and sample.labels.get("queue") == "monitoring" and sample.labels.get("function") == "succeed"
    ]
    assert sorted(exemplars) == [expected, expected]
    assert "# {trace_id=" not in scrape(worker_process.port)


def test_simple_worker_records_once_without_a_horse(metrics_env, db):
    from modwatch.jobs.worker import build_worker

    def current(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    mastodon = {"endpoint": "/api/v2/admin/accounts", "method": "GET", "status": "200"}
    succeeded = {"queue": "webhooks", "function": "call_mastodon", "outcome": "succeeded"}
    enqueued = {"queue": "webhooks", "function": "call_mastodon"}
    before = (current("modwatch_mastodon_requests_total", **mastodon), current("modwatch_jobs_finished_total", **succeeded),
              current("modwatch_jobs_enqueued_total", **enqueued))
    queue = get_queue("webhooks")
    queue.enqueue("metricjobs.call_mastodon")
    queue.enqueue("metricjobs.call_mastodon")

    worker = build_worker(db, ["webhooks"], simple=True)
    assert worker.work(burst=True)

    after = (current("modwatch_mastodon_requests_total", **mastodon), current("modwatch_jobs_finished_total", **succeeded),
             current("modwatch_jobs_enqueued_total", **enqueued))
    assert [b - a for a, b in zip(before, after)] == [2, 2, 2]
