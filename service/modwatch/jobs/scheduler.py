"""Recurring jobs through rq-scheduler, with one leader and a heartbeat.

rq-scheduler's own lock is taken and dropped on every loop, so two schedulers take turns. Here the
lock is a lease the leader renews: one scheduler schedules, the others wait to take over when its
lease lapses. Recurring jobs have fixed ids, so a restart or a second scheduler re-registers the
same three jobs instead of adding copies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import redis
import structlog
from rq.job import Job
from rq_scheduler import Scheduler

from modwatch.jobs import tasks
from modwatch.jobs.enqueue import JOB_OPTIONS
from modwatch.jobs.queues import ModwatchQueue
from modwatch.settings import Settings
from modwatch.telemetry.rq_tracing import TracingSchedulerMixin

log = structlog.get_logger(__name__)

LEADER_KEY = "modwatch:scheduler:leader"
HEARTBEAT_KEY = "modwatch:scheduler:heartbeat"
INTERVAL_OVERRIDES_KEY = "modwatch:scheduler:intervals"
# The loop never sleeps longer than this, whatever the intervals, so a reschedule is seen quickly.
MAX_LOOP_SECONDS = 5
_RENEW_OR_ACQUIRE = """
local owner = redis.call('get', KEYS[1])
if owner == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end
if not owner then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
return 0
"""
_RELEASE_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Recurring:
    name: str
    function: Callable[..., Any]
    setting: str

    @property
    def job_id(self) -> str:
        return f"recurring-{self.name}"


RECURRING = (
    Recurring("poll_admin_accounts", tasks.poll_admin_accounts, "poll_admin_accounts_interval"),
    Recurring("poll_admin_accounts_local", tasks.poll_admin_accounts_local, "poll_admin_accounts_local_interval"),
    Recurring("record_queue_stats", tasks.record_queue_stats, "queue_stats_interval"),
    Recurring("file_pending_reports", tasks.file_pending_reports, "report_filing_interval"),
)
RECURRING_NAMES = tuple(spec.name for spec in RECURRING)


def intervals(settings: Settings, connection: redis.Redis) -> dict[str, int]:
    """Configured intervals, with runtime overrides from `POST /jobs/scheduled/reschedule`."""
    overrides = {key.decode(): int(value) for key, value in connection.hgetall(INTERVAL_OVERRIDES_KEY).items()}
    return {spec.name: overrides.get(spec.name, getattr(settings, spec.setting)) for spec in RECURRING}


def loop_seconds(settings: Settings, connection: redis.Redis) -> int:
    return max(1, min(MAX_LOOP_SECONDS, *intervals(settings, connection).values()))


class LeaderScheduler(TracingSchedulerMixin, Scheduler):
    queue_class = ModwatchQueue

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        super().__init__(connection=connection, interval=loop_seconds(settings, connection), queue_class=ModwatchQueue)
        self.settings = settings
        self.registered = False

    @property
    def lease_seconds(self) -> int:
        return int(self._interval) * 3

    def acquire_lock(self) -> bool:
        self._lock_acquired = bool(
            self.connection.eval(_RENEW_OR_ACQUIRE, 1, LEADER_KEY, self.name, self.lease_seconds)
        )
        if self._lock_acquired and not self.registered:
            register_recurring(self, intervals(self.settings, self.connection))
            self.registered = True
            log.info("scheduler_leader", scheduler=self.name)
        elif not self._lock_acquired:
            self.registered = False
        return self._lock_acquired

    def remove_lock(self) -> None:
        """Keep the lease between loops; it is released when the scheduler stops."""

    def heartbeat(self) -> None:
        super().heartbeat()
        self.connection.set(HEARTBEAT_KEY, time.time())

    def register_death(self) -> None:
        self.connection.eval(_RELEASE_IF_OWNER, 1, LEADER_KEY, self.name)
        super().register_death()


def register_recurring(scheduler: Scheduler, wanted: dict[str, int]) -> None:
    """Make the scheduled set hold exactly one job per recurring spec, at its interval."""
    existing = {job.id: job for job in scheduler.get_jobs()}
    for spec in RECURRING:
        interval = wanted[spec.name]
        job = existing.get(spec.job_id)
        if job is not None and job.meta.get("interval") == interval and job.func_name == _dotted(spec.function):
            continue
        if job is not None:
            scheduler.cancel(job)
        options = JOB_OPTIONS[spec.function]
        scheduler.schedule(
            scheduled_time=datetime.now(timezone.utc),
            func=spec.function,
            interval=interval,
            id=spec.job_id,
            queue_name=options.queue,
            timeout=options.timeout,
            result_ttl=options.result_ttl,
        )
        log.info("recurring_job_registered", task=spec.name, interval=interval)


def _dotted(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def recurring_status(connection: redis.Redis) -> list[dict[str, Any]]:
    scores = dict(connection.zrange(Scheduler.scheduled_jobs_key, 0, -1, withscores=True))
    jobs = Job.fetch_many([spec.job_id for spec in RECURRING], connection=connection)
    status = []
    for spec, job in zip(RECURRING, jobs):
        score = scores.get(spec.job_id.encode())
        status.append(
            {
                "task_name": spec.name,
                "job_id": spec.job_id,
                "registered": job is not None and score is not None,
                "interval": job.meta.get("interval") if job is not None else None,
                "next_run_at": datetime.fromtimestamp(score, timezone.utc).isoformat() if score is not None else None,
                "queue": JOB_OPTIONS[spec.function].queue,
            }
        )
    return status


def reschedule(connection: redis.Redis, name: str, interval: int | None, run_now: bool) -> dict[str, Any]:
    """Store an interval override (the leader applies it) and/or move the next run to now."""
    spec = next(spec for spec in RECURRING if spec.name == name)
    if interval is not None:
        connection.hset(INTERVAL_OVERRIDES_KEY, name, interval)
        job = Job.fetch_many([spec.job_id], connection=connection)[0]
        if job is not None:
            job.meta["interval"] = interval
            job.save_meta()
    if run_now and connection.zscore(Scheduler.scheduled_jobs_key, spec.job_id) is not None:
        connection.zadd(Scheduler.scheduled_jobs_key, {spec.job_id: time.time()}, xx=True)
    return next(item for item in recurring_status(connection) if item["task_name"] == name)


def heartbeat_age(connection: redis.Redis) -> float | None:
    value = connection.get(HEARTBEAT_KEY)
    return None if value is None else max(0.0, time.time() - float(value))


def run_scheduler(settings: Settings, connection: redis.Redis, burst: bool = False) -> None:
    LeaderScheduler(settings, connection).run(burst=burst)
