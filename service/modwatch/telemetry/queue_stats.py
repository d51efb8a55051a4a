"""Queue, worker and scheduler health, read from Redis at scrape time by the API's /metrics.

The gauges come from the process Prometheus scrapes, not from the workers they judge: with every
worker stopped, depth, oldest-job age, workers per queue and abandoned jobs stay true, and a Redis
that does not answer shows as `modwatch_redis_up 0` instead of missing series.

One scrape costs one pipeline with a fixed number of commands per queue, each O(1) or O(log n)
whatever the depth (raw LLEN/ZCARD/ZCOUNT on RQ's keys, never RQ's registry helpers, which clean
up, i.e. write, as they count) plus two read-only scripts that are O(workers on the queue).

`record_queue_stats`, the recurring job, runs the same collection from a worker and stores when it
last succeeded: that timestamp is the end-to-end heartbeat of scheduler -> queue -> worker, and the
job's result (kept by RQ) is the latest snapshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import redis
import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue
from rq.job import Job
from rq.utils import str_to_date
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from modwatch.connection import get_redis
from modwatch.redis_keys import (
    DOMAIN_VIOLATIONS_KEY,
    QUEUE_STATS_DURATION_KEY,
    QUEUE_STATS_LAST_SUCCESS_KEY,
    RUNTIME_KEY,
    SCHEDULER_HEARTBEAT_KEY,
)
from modwatch.settings import get_settings

log = structlog.get_logger(__name__)

TOP_DOMAINS = 20
WORKER_STATES = ("idle", "busy", "suspended")
TRUE_WORDS = {"1", "true", "yes", "on"}

# Scripts that only read (plain EVAL, so Redis 6 works too; RQ's keys are never written).
# The states of the workers of one queue, server-side: one command per queue, O(workers). A worker
# whose hash expired (killed without a goodbye, after RQ's worker TTL) is not counted.
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
# The earliest started_at of the jobs running on a queue whose worker still heartbeats (started
# registry entries are `<job id>:<execution id>`, scored by the heartbeat's expiry). O(running jobs).
# RQ's timestamps are ISO 8601 in UTC, so the smallest string is the earliest time.
_EARLIEST_RUNNING_START = """
local earliest = false
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  local job_id = string.match(entry, '^(.*):[^:]*$') or entry
  local started = redis.call('HGET', ARGV[1] .. job_id, 'started_at')
  if started and (not earliest or started < earliest) then earliest = started end
end
return earliest
"""

# Name -> (help, label names) of everything the collector serves.
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "modwatch_redis_up": ("1 when the API read Redis at this scrape, 0 when Redis did not answer.", ()),
    "rq_jobs": ("Jobs by queue and status, read at scrape time.", ("queue", "status")),
    "modwatch_queue_oldest_job_age_seconds": ("Age of the oldest queued job; 0 when the queue is empty.", ("queue",)),
    "modwatch_queue_longest_running_job_seconds": (
        "How long the longest-running job on a queue has run (live workers only); 0 when none runs.", ("queue",)),
    "modwatch_queue_abandoned_jobs": ("Started jobs whose worker stopped heartbeating.", ("queue",)),
    "modwatch_workers": ("Workers listening on a queue, by state.", ("queue", "state")),
    "modwatch_scheduler_heartbeat_timestamp_seconds": ("Last scheduler loop, unix time.", ()),
    "modwatch_queue_stats_last_success_timestamp_seconds": ("When record_queue_stats last succeeded, unix time.", ()),
    "modwatch_queue_stats_duration_seconds": ("How long the last record_queue_stats collection took.", ()),
    "modwatch_panic_stop": ("1 while PANIC_STOP is on.", ()),
    "modwatch_dry_run": ("1 while DRY_RUN is on.", ()),
    "modwatch_top_domain_violations": ("Violations per remote domain, the 20 worst only.", ("domain",)),
}


@dataclass(frozen=True)
class QueueKeys:
    """RQ's Redis keys of one queue, worked out once."""

    name: str
    queue: str
    started: str
    scheduled: str
    deferred: str
    failed: str
    finished: str
    canceled: str
    workers: str

    @classmethod
    def of(cls, name: str) -> "QueueKeys":
        # A connection is required by RQ's constructor; none is used to name keys.
        queue = Queue(name, connection=redis.Redis())
        return cls(
            name=name, queue=queue.key, started=queue.started_job_registry.key,
            scheduled=queue.scheduled_job_registry.key, deferred=queue.deferred_job_registry.key,
            failed=queue.failed_job_registry.key, finished=queue.finished_job_registry.key,
            canceled=queue.canceled_job_registry.key, workers=WORKERS_BY_QUEUE_KEY % name,
        )


# Replies of `_queue_commands`, in order.
QUEUE_REPLIES = 11


def _queue_commands(pipe: redis.client.Pipeline, keys: QueueKeys, now: float) -> None:
    prefix = Job.redis_job_namespace_prefix
    pipe.llen(keys.queue)
    pipe.zcard(keys.started)
    pipe.zcard(keys.scheduled)
    pipe.zcard(keys.deferred)
    # Failed and finished entries are scored by expiry: those RQ has not cleaned up yet are not counted.
    pipe.zcount(keys.failed, f"({now}", "+inf")
    pipe.zcount(keys.finished, f"({now}", "+inf")
    pipe.zcard(keys.canceled)
    # Started entries are scored by the heartbeat's expiry: past it, the job's worker is gone.
    pipe.zcount(keys.started, "-inf", now)
    pipe.eval(_HEAD_ENQUEUED_AT, 1, keys.queue, prefix)
    pipe.eval(_EARLIEST_RUNNING_START, 1, keys.started, prefix, now)
    pipe.eval(_WORKER_STATES, 1, keys.workers)


def _age(timestamp: bytes | None, now: float) -> float | None:
    return None if not timestamp else max(0.0, now - str_to_date(timestamp).timestamp())


def _queue_stats(replies: list[Any], now: float) -> dict[str, Any]:
    (queued, started, scheduled, deferred, failed, finished, canceled, abandoned,
     head_enqueued_at, earliest_start, states) = replies
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
        "oldest_job_age_seconds": _age(head_enqueued_at, now) or 0.0,
        "longest_running_job_seconds": _age(earliest_start, now) or 0.0,
        "abandoned_jobs": abandoned,
        "workers": workers,
    }


def collect(connection: redis.Redis, queues: Sequence[QueueKeys], now: float | None = None,
            extra: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> tuple[dict[str, Any], list[Any]]:
    """One pipeline: per-queue statistics, then the replies of `extra` (command name, arguments)."""
    now = time.time() if now is None else now
    with connection.pipeline(transaction=False) as pipe:
        for keys in queues:
            _queue_commands(pipe, keys, now)
        for command, args in extra:
            getattr(pipe, command)(*args)
        replies = pipe.execute()
    stats = {keys.name: _queue_stats(replies[i * QUEUE_REPLIES:(i + 1) * QUEUE_REPLIES], now)
             for i, keys in enumerate(queues)}
    return stats, replies[len(queues) * QUEUE_REPLIES:]


def record(queues: Sequence[str], connection: redis.Redis | None = None) -> dict[str, Any]:
    """The body of `record_queue_stats`: collect from a worker and store when it succeeded."""
    connection = connection or get_redis()
    started = time.perf_counter()
    stats, _ = collect(connection, [QueueKeys.of(name) for name in queues])
    duration = time.perf_counter() - started
    with connection.pipeline() as pipe:
        pipe.set(QUEUE_STATS_LAST_SUCCESS_KEY, time.time())
        pipe.set(QUEUE_STATS_DURATION_KEY, duration)
        pipe.execute()
    return {"queues": stats, "duration_seconds": duration}


def _flag(value: bytes | None, default: bool) -> int:
    return int(default if value is None else value.decode().strip().lower() in TRUE_WORDS)


class QueueStatsCollector(Collector):
    """Reads queue health from Redis when Prometheus scrapes the API (see the module docstring)."""

    def __init__(self, queues: Sequence[str]) -> None:
        self.queues = [QueueKeys.of(name) for name in queues]
        self.extra = (
            ("mget", (QUEUE_STATS_LAST_SUCCESS_KEY, QUEUE_STATS_DURATION_KEY, SCHEDULER_HEARTBEAT_KEY)),
            ("hmget", (RUNTIME_KEY, "dry_run", "panic_stop")),
            ("zrevrange", (DOMAIN_VIOLATIONS_KEY, 0, TOP_DOMAINS - 1, True)),
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, help, labels=labels) for name, (help, labels) in GAUGES.items()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families = {name: GaugeMetricFamily(name, help, labels=labels) for name, (help, labels) in GAUGES.items()}
        settings = get_settings()
        try:
            queues, (timestamps, runtime, domains) = collect(get_redis(), self.queues, extra=self.extra)
        except redis.RedisError as exc:
            log.warning("queue_stats_unreadable", error=type(exc).__name__)
            families["modwatch_redis_up"].add_metric([], 0)
            # The switches fall back to the environment: still true, and dashboards keep them.
            families["modwatch_dry_run"].add_metric([], int(settings.dry_run))
            families["modwatch_panic_stop"].add_metric([], int(settings.panic_stop))
            return [family for family in families.values() if family.samples]
        families["modwatch_redis_up"].add_metric([], 1)
        last_success, duration, heartbeat = timestamps
        dry_run, panic_stop = runtime
        families["modwatch_dry_run"].add_metric([], _flag(dry_run, settings.dry_run))
        families["modwatch_panic_stop"].add_metric([], _flag(panic_stop, settings.panic_stop))
        for name, value in (("modwatch_queue_stats_last_success_timestamp_seconds", last_success),
                            ("modwatch_queue_stats_duration_seconds", duration),
                            ("modwatch_scheduler_heartbeat_timestamp_seconds", heartbeat)):
            if value is not None:
                families[name].add_metric([], float(value))
        add_queue_stats(families, queues)
        for domain, violations in domains:
            families["modwatch_top_domain_violations"].add_metric([domain.decode()], violations)
        return [family for family in families.values() if family.samples]


def add_queue_stats(families: dict[str, GaugeMetricFamily], queues: dict[str, Any]) -> None:
    for queue, stats in queues.items():
        for status, count in stats["jobs"].items():
            families["rq_jobs"].add_metric([queue, status], count)
        families["modwatch_queue_oldest_job_age_seconds"].add_metric([queue], stats["oldest_job_age_seconds"])
        families["modwatch_queue_longest_running_job_seconds"].add_metric([queue], stats["longest_running_job_seconds"])
        families["modwatch_queue_abandoned_jobs"].add_metric([queue], stats["abandoned_jobs"])
        for state, count in stats["workers"].items():
            families["modwatch_workers"].add_metric([queue, state], count)


_collector: QueueStatsCollector | None = None


def register_collector(queues: Sequence[str]) -> None:
    """Serve queue health from this process's default registry (the API process only); idempotent."""
    global _collector
    if _collector is None:
        _collector = QueueStatsCollector(queues)
        REGISTRY.register(_collector)
