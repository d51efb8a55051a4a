"""Queue, worker and scheduler statistics: taken by `record_queue_stats`, served by the API.

The job runs in a short-lived work horse, so it publishes a JSON snapshot to Redis with a TTL of a
few intervals, and the API's /metrics turns the snapshot into gauges at scrape time. If the job
stops, the snapshot expires and its series vanish while the last-success timestamp goes stale.

The snapshot costs one pipeline with a fixed number of commands per queue, each O(1) or O(log n)
whatever the depth: raw LLEN/ZCARD/ZCOUNT on RQ's keys, never RQ's registry helpers, which
clean up (write) as they count.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable

import redis
import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq.job import Job
from rq.utils import str_to_date
from rq.worker_registration import WORKERS_BY_QUEUE_KEY
from rq_scheduler import Scheduler

from modwatch.connection import get_redis
from modwatch.jobs.queues import PRIORITY, get_queue
from modwatch.jobs.scheduler import HEARTBEAT_KEY, RECURRING
from modwatch.settings import get_settings

log = structlog.get_logger(__name__)

SNAPSHOT_KEY = "modwatch:queue_stats"
LAST_SUCCESS_KEY = "modwatch:queue_stats:last_success"
RUNTIME_KEY = "modwatch:runtime"
DOMAIN_VIOLATIONS_KEY = "modwatch:domain_violations"
TOP_DOMAINS = 20
# The snapshot outlives a few missed runs, not more: then its gauges vanish instead of freezing.
SNAPSHOT_TTL_INTERVALS = 4
WORKER_STATES = ("idle", "busy", "suspended")
TRUE_WORDS = {"1", "true", "yes", "on"}

# Scripts that only read (plain EVAL, so Redis 6 works too; RQ's keys are never written). The worker hashes of one queue are read
# server-side: one command per queue, O(workers).
_WORKER_STATES = """
local states = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local state = redis.call('HGET', key, 'state')
  if state then table.insert(states, state) end
end
return states
"""
# The head of a queue is its oldest job; its enqueued_at, or nothing when the queue is empty.
_HEAD_ENQUEUED_AT = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return false end
return redis.call('HGET', ARGV[1] .. head, 'enqueued_at')
"""

# Name -> (help, label names) of everything the collector serves.
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rq_jobs": ("Jobs by queue and status, from record_queue_stats.", ("queue", "status")),
    "modwatch_queue_oldest_job_age_seconds": ("Age of the oldest queued job; 0 when the queue is empty.", ("queue",)),
    "modwatch_queue_abandoned_jobs": ("Started jobs whose worker stopped heartbeating.", ("queue",)),
    "modwatch_workers": ("Workers listening on a queue, by state.", ("queue", "state")),
    "modwatch_scheduler_recurring_jobs": ("Recurring jobs registered in rq-scheduler.", ("function",)),
    "modwatch_scheduler_heartbeat_timestamp_seconds": ("Last scheduler loop, unix time.", ()),
    "modwatch_queue_stats_last_success_timestamp_seconds": ("When record_queue_stats last succeeded, unix time.", ()),
    "modwatch_queue_stats_duration_seconds": ("How long the last record_queue_stats collection took.", ()),
    "modwatch_panic_stop": ("1 while PANIC_STOP is on.", ()),
    "modwatch_dry_run": ("1 while DRY_RUN is on.", ()),
    "modwatch_top_domain_violations": ("Violations per remote domain, the 20 worst only.", ("domain",)),
}


# Replies of `_queue_commands`, in order.
QUEUE_REPLIES = 10


def _queue_commands(pipe: redis.client.Pipeline, name: str, now: float) -> None:
    queue = get_queue(name)
    pipe.llen(queue.key)
    pipe.zcard(queue.started_job_registry.key)
    pipe.zcard(queue.scheduled_job_registry.key)
    pipe.zcard(queue.deferred_job_registry.key)
    # Failed and finished entries are scored by expiry: those RQ has not cleaned up yet are not counted.
    pipe.zcount(queue.failed_job_registry.key, f"({now}", "+inf")
    pipe.zcount(queue.finished_job_registry.key, f"({now}", "+inf")
    pipe.zcard(queue.canceled_job_registry.key)
    # Started entries are scored by the heartbeat's expiry: past it, the job's worker is gone.
    pipe.zcount(queue.started_job_registry.key, "-inf", now)
    pipe.eval(_HEAD_ENQUEUED_AT, 1, queue.key, Job.redis_job_namespace_prefix)
    pipe.eval(_WORKER_STATES, 1, WORKERS_BY_QUEUE_KEY % name)


def _queue_stats(replies: list[Any], now: float) -> dict[str, Any]:
    queued, started, scheduled, deferred, failed, finished, canceled, abandoned, head_enqueued_at, states = replies
    workers = dict.fromkeys(WORKER_STATES, 0)
    for state in states:
        # RQ's `started`/`starting` is a worker between birth and its first dequeue.
        state = state.decode()
        workers[state if state in workers else "idle"] += 1
    return {
        "jobs": {
            "queued": queued, "started": started, "scheduled": scheduled, "deferred": deferred,
            "failed": failed, "finished": finished, "canceled": canceled,
        },
        "oldest_enqueued_at": str_to_date(head_enqueued_at).timestamp() if head_enqueued_at else None,
        "abandoned_jobs": abandoned,
        "workers": workers,
    }


def collect(connection: redis.Redis, now: float | None = None) -> dict[str, Any]:
    """One pipeline, a fixed number of commands: the snapshot record_queue_stats publishes."""
    now = time.time() if now is None else now
    with connection.pipeline(transaction=False) as pipe:
        for name in PRIORITY:
            _queue_commands(pipe, name, now)
        for spec in RECURRING:
            pipe.zscore(Scheduler.scheduled_jobs_key, spec.job_id)
        pipe.zrevrange(DOMAIN_VIOLATIONS_KEY, 0, TOP_DOMAINS - 1, withscores=True)
        replies = pipe.execute()
    queues = {}
    for index, name in enumerate(PRIORITY):
        queues[name] = _queue_stats(replies[index * QUEUE_REPLIES:(index + 1) * QUEUE_REPLIES], now)
    rest = replies[len(PRIORITY) * QUEUE_REPLIES:]
    recurring = {spec.name: int(score is not None) for spec, score in zip(RECURRING, rest)}
    top_domains = [[domain.decode(), score] for domain, score in rest[len(RECURRING)]]
    return {"taken_at": now, "queues": queues, "recurring_jobs": recurring, "top_domain_violations": top_domains}


def record(connection: redis.Redis | None = None) -> dict[str, Any]:
    """Take a snapshot and publish it for the API's /metrics; the body of `record_queue_stats`."""
    connection = connection or get_redis()
    started = time.perf_counter()
    snapshot = collect(connection)
    snapshot["duration_seconds"] = time.perf_counter() - started
    ttl = SNAPSHOT_TTL_INTERVALS * get_settings().queue_stats_interval
    with connection.pipeline() as pipe:
        pipe.set(SNAPSHOT_KEY, json.dumps(snapshot), ex=ttl)
        pipe.set(LAST_SUCCESS_KEY, time.time())
        pipe.execute()
    return snapshot


def _flag(value: bytes | None, default: bool) -> int:
    return int(default if value is None else value.decode().strip().lower() in TRUE_WORDS)


class QueueStatsCollector(Collector):
    """Serves the latest snapshot, and a few O(1) keys read at scrape time, in the API process.

    The scheduler heartbeat, the last-success time and the runtime switches are read live: they
    must stay visible (and go stale) when record_queue_stats stops.
    """

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, help, labels=labels) for name, (help, labels) in GAUGES.items()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                pipe.mget(SNAPSHOT_KEY, LAST_SUCCESS_KEY, HEARTBEAT_KEY)
                pipe.hmget(RUNTIME_KEY, "dry_run", "panic_stop")
                (raw_snapshot, last_success, heartbeat), (dry_run, panic_stop) = pipe.execute()
        except redis.RedisError as exc:
            log.warning("queue_stats_unreadable", error=type(exc).__name__)
            return []
        settings = get_settings()
        families = {name: GaugeMetricFamily(name, help, labels=labels) for name, (help, labels) in GAUGES.items()}
        families["modwatch_dry_run"].add_metric([], _flag(dry_run, settings.dry_run))
        families["modwatch_panic_stop"].add_metric([], _flag(panic_stop, settings.panic_stop))
        if last_success is not None:
            families["modwatch_queue_stats_last_success_timestamp_seconds"].add_metric([], float(last_success))
        if heartbeat is not None:
            families["modwatch_scheduler_heartbeat_timestamp_seconds"].add_metric([], float(heartbeat))
        if raw_snapshot is not None:
            add_snapshot(families, json.loads(raw_snapshot), time.time())
        return [family for family in families.values() if family.samples]


def add_snapshot(families: dict[str, GaugeMetricFamily], snapshot: dict[str, Any], now: float) -> None:
    families["modwatch_queue_stats_duration_seconds"].add_metric([], snapshot["duration_seconds"])
    for queue, stats in snapshot["queues"].items():
        for status, count in stats["jobs"].items():
            families["rq_jobs"].add_metric([queue, status], count)
        oldest = stats["oldest_enqueued_at"]
        families["modwatch_queue_oldest_job_age_seconds"].add_metric([queue], 0 if oldest is None else max(0.0, now - oldest))
        families["modwatch_queue_abandoned_jobs"].add_metric([queue], stats["abandoned_jobs"])
        for state, count in stats["workers"].items():
            families["modwatch_workers"].add_metric([queue, state], count)
    for function, registered in snapshot["recurring_jobs"].items():
        families["modwatch_scheduler_recurring_jobs"].add_metric([function], registered)
    for domain, violations in snapshot["top_domain_violations"]:
        families["modwatch_top_domain_violations"].add_metric([domain], violations)


_collector: QueueStatsCollector | None = None


def register_collector() -> None:
    """Serve the snapshot from this process's default registry (the API process only); idempotent."""
    global _collector
    if _collector is None:
        _collector = QueueStatsCollector()
        REGISTRY.register(_collector)
