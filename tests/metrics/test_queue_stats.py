"""Queue health read by the API at scrape time: gauges that match Redis, a fixed read-only cost, no worker needed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.client import Pipeline
from rq.job import Job
from rq.utils import utcformat

from conftest import REDIS_URL
from isolation import free_port, reset_caches
from modwatch.jobs.queues import PRIORITY, get_queue
from modwatch.redis_keys import DOMAIN_VIOLATIONS_KEY, QUEUE_STATS_LAST_SUCCESS_KEY, RUNTIME_KEY, SCHEDULER_HEARTBEAT_KEY
from modwatch.telemetry import queue_stats


@pytest.fixture
def api(metrics_env):
    from fastapi.testclient import TestClient

    from modwatch.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


def api_samples(api) -> dict[tuple[str, frozenset], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_gauges_match_what_was_enqueued(api, db):
    from modwatch.jobs.worker import build_worker

    webhooks, moderation, monitoring = get_queue("webhooks"), get_queue("moderation"), get_queue("monitoring")
    head = webhooks.enqueue("metricjobs.succeed")
    for _ in range(4):
        webhooks.enqueue("metricjobs.succeed")
    webhooks.enqueue_in(timedelta(minutes=10), "metricjobs.succeed")
    webhooks.enqueue("metricjobs.succeed").cancel()
    parent = moderation.enqueue("metricjobs.succeed")
    moderation.enqueue("metricjobs.succeed", depends_on=parent)
    monitoring.enqueue("metricjobs.succeed")
    monitoring.enqueue("metricjobs.fail")
    build_worker(db, ["monitoring"], simple=True).work(burst=True)
    # Two started entries, one of them past its heartbeat expiry: abandoned.
    started_key = webhooks.started_job_registry.key
    db.zadd(started_key, {"gone:exec": time.time() - 30, "alive:exec": time.time() + 300})
    db.hset(Job.key_for(head.id), "enqueued_at", "2020-01-01T00:00:00.000000Z")
    busy = build_worker(db, ["webhooks", "moderation"])
    busy.register_birth()
    busy.set_state("busy")
    # "alive" has run for ten minutes on a live worker; "gone" started in 2020 but its worker is dead;
    # "vanished" has no job hash any more.
    db.zadd(started_key, {"vanished:exec": time.time() + 300})
    db.hset(Job.key_for("alive"), "started_at", utcformat(datetime.now(timezone.utc) - timedelta(minutes=10)))
    db.hset(Job.key_for("gone"), "started_at", "2020-01-01T00:00:00.000000Z")
    db.set(SCHEDULER_HEARTBEAT_KEY, 1700000000.5)
    db.hset(RUNTIME_KEY, mapping={"panic_stop": "1", "dry_run": "false"})
    db.zadd(DOMAIN_VIOLATIONS_KEY, {f"spam{n}.example": n for n in range(25)})

    snapshot = queue_stats.record(PRIORITY)
    scraped = api_samples(api)

    def gauge(name: str, **labels: str) -> float | None:
        return scraped.get((name, frozenset(labels.items())))

    expected = {
        "webhooks": {"queued": 5, "started": 3, "scheduled": 1, "deferred": 0, "failed": 0, "finished": 0, "canceled": 1},
        "moderation": {"queued": 1, "started": 0, "scheduled": 0, "deferred": 1, "failed": 0, "finished": 0, "canceled": 0},
        "monitoring": {"queued": 0, "started": 0, "scheduled": 0, "deferred": 0, "failed": 1, "finished": 1, "canceled": 0},
    }
    for queue, counts in expected.items():
        assert snapshot["queues"][queue]["jobs"] == counts  # what the recurring job saw from its worker
        for status, count in counts.items():
            assert gauge("rq_jobs", queue=queue, status=status) == count, (queue, status)
    assert gauge("modwatch_queue_abandoned_jobs", queue="webhooks") == 1
    assert gauge("modwatch_queue_abandoned_jobs", queue="moderation") == 0
    # The head of webhooks was enqueued in 2020; an empty queue reports 0.
    assert gauge("modwatch_queue_oldest_job_age_seconds", queue="webhooks") > time.time() - 1577836800 - 60
    assert gauge("modwatch_queue_oldest_job_age_seconds", queue="monitoring") == 0
    assert gauge("modwatch_workers", queue="webhooks", state="busy") == 1
    assert gauge("modwatch_workers", queue="moderation", state="busy") == 1
    assert gauge("modwatch_workers", queue="monitoring", state="busy") == 0
    assert 599 <= gauge("modwatch_queue_longest_running_job_seconds", queue="webhooks") < 700
    assert gauge("modwatch_queue_longest_running_job_seconds", queue="moderation") == 0
    assert gauge("modwatch_redis_up") == 1
    assert gauge("modwatch_scheduler_heartbeat_timestamp_seconds") == 1700000000.5
    assert gauge("modwatch_panic_stop") == 1
    assert gauge("modwatch_dry_run") == 0
    domains = {dict(labels)["domain"]: v for (name, labels), v in scraped.items() if name == "modwatch_top_domain_violations"}
    assert domains == {f"spam{n}.example": n for n in range(5, 25)}
    assert gauge("modwatch_queue_stats_last_success_timestamp_seconds") == float(db.get(QUEUE_STATS_LAST_SUCCESS_KEY))
    assert gauge("modwatch_queue_stats_duration_seconds") == pytest.approx(snapshot["duration_seconds"])
    busy.register_death()


def test_queue_gauges_stay_true_without_any_worker_and_redis_down_is_explicit(api, db, monkeypatch):
    """No record_queue_stats ever ran (no worker): the queue gauges are still read live."""
    for _ in range(3):
        get_queue("webhooks").enqueue("metricjobs.succeed")
    scraped = api_samples(api)
    assert scraped[("rq_jobs", frozenset({"queue": "webhooks", "status": "queued"}.items()))] == 3
    assert scraped[("modwatch_workers", frozenset({"queue": "webhooks", "state": "idle"}.items()))] == 0
    assert scraped[("modwatch_queue_oldest_job_age_seconds", frozenset({"queue": "webhooks"}.items()))] >= 0
    names = {name for name, _ in scraped}
    # Never succeeded: no timestamp at all (ModwatchQueueStatsAbsent), rather than a made-up one.
    assert "modwatch_queue_stats_last_success_timestamp_seconds" not in names
    assert scraped[("modwatch_redis_up", frozenset())] == 1

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/1")  # nothing listens there
    reset_caches()
    try:
        down = api_samples(api)
    finally:
        monkeypatch.setenv("REDIS_URL", REDIS_URL)
        reset_caches()
    assert down[("modwatch_redis_up", frozenset())] == 0
    down_names = {name for name, _ in down}
    assert "rq_jobs" not in down_names and "modwatch_workers" not in down_names
    # Runtime switches fall back to the environment: DRY_RUN defaults on, PANIC_STOP off.
    assert down[("modwatch_dry_run", frozenset())] == 1 and down[("modwatch_panic_stop", frozenset())] == 0


def test_closed_label_sets_start_at_zero():
    from prometheus_client import REGISTRY

    from modwatch.jobs.metric_series import start_at_zero

    start_at_zero("worker")
    start_at_zero("api")
    sample = REGISTRY.get_sample_value
    assert sample("modwatch_jobs_finished_total", {"queue": "webhooks", "function": "process_new_status", "outcome": "failed"}) is not None
    assert sample("modwatch_job_wait_seconds_count", {"queue": "monitoring", "function": "record_queue_stats"}) is not None
    assert sample("modwatch_ratelimit_waits_total", {"family": "paging"}) is not None
    assert sample("modwatch_webhook_deliveries_total", {"event": "status.created", "outcome": "bad_signature"}) is not None


class CountingRedis(redis.Redis):
    """Records every command sent, one by one or in pipelines, and each round trip."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []
        self.round_trips = 0

    def execute_command(self, *args, **options):
        self.sent.append(str(args[0]).upper())
        self.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        client = self

        class CountingPipeline(Pipeline):
            def execute(self, raise_on_error=True):
                client.sent.extend(str(args[0]).upper() for args, _ in self.command_stack)
                client.round_trips += 1
                return super().execute(raise_on_error)

        return CountingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def test_cost_is_fixed_and_read_only_whatever_the_depth(metrics_env, db):
    webhooks = get_queue("webhooks")
    for _ in range(10):
        webhooks.enqueue("metricjobs.succeed")
    # An expired failed entry: RQ's own registry helpers would clean it up (a write).
    expired = {"expired-job": time.time() - 60}
    db.zadd(get_queue("webhooks").failed_job_registry.key, expired)
    counting = CountingRedis.from_url(REDIS_URL)

    queues = [queue_stats.QueueKeys.of(name) for name in PRIORITY]
    shallow, _ = queue_stats.collect(counting, queues)
    shallow_sent, shallow_trips = list(counting.sent), counting.round_trips

    with db.pipeline(transaction=False) as pipe:
        for start in range(0, 100_000, 10_000):
            pipe.rpush(webhooks.key, *[f"filler-{n}" for n in range(start, start + 10_000)])
            pipe.zadd(webhooks.finished_job_registry.key, {f"done-{n}": time.time() + 3600 for n in range(start, start + 10_000)})
        pipe.execute()
    counting.sent.clear()
    counting.round_trips = 0
    before = {key: db.dump(key) for key in db.keys("rq:*")}

    deep, _ = queue_stats.collect(counting, queues)

    assert counting.sent == shallow_sent
    assert counting.round_trips == shallow_trips == 1
    assert set(counting.sent) <= {"LLEN", "ZCARD", "ZCOUNT", "EVAL"}
    assert {key: db.dump(key) for key in db.keys("rq:*")} == before
    assert shallow["webhooks"]["jobs"]["queued"] == 10
    assert deep["webhooks"]["jobs"]["queued"] == 100_010
    assert deep["webhooks"]["jobs"]["finished"] == 100_000
    assert deep["webhooks"]["jobs"]["failed"] == 0
    # The head is still the first real job: its age is known although 100,000 ids follow it.
    assert deep["webhooks"]["oldest_job_age_seconds"] >= shallow["webhooks"]["oldest_job_age_seconds"] > 0
