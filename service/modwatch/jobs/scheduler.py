"""Recurring jobs through rq-scheduler, with one leader and a heartbeat.

rq-scheduler's own lock is taken and dropped on every loop, so two schedulers take turns. Here the
lock is a lease the leader renews: one scheduler schedules, the others wait to take over when its
lease lapses. Recurring jobs have fixed ids, so a restart or a second scheduler re-registers the
same three jobs instead of adding copies.

Recurring jobs cannot silently disappear: the leader checks every registration on every loop and
repairs what it finds (a lost job hash, a missing schedule entry, an expiry on the hash, a changed
interval). rq-scheduler cancels a recurring job whose hash expired, and RQ puts an expiry on it
after a failure (failure_ttl); a result_ttl of -1 keeps it after a success. A run that comes due
while the previous one still waits or runs is coalesced into it: after a worker outage each
recurring job runs once, not once per missed interval.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, cast

import redis
import structlog
from rq.job import Job, JobStatus
from rq.worker import Worker
from rq_scheduler import Scheduler

from modwatch.connection import text
from modwatch.jobs import monitoring, tasks
from modwatch.jobs.enqueue import JOB_OPTIONS
from modwatch.jobs.queues import ModwatchQueue
from modwatch.redis_keys import SCHEDULER_HEARTBEAT_KEY, SCHEDULER_INTERVALS_KEY, SCHEDULER_LEADER_KEY
from modwatch.settings import Settings
from modwatch.telemetry.metrics import RECURRING_JOBS, RECURRING_REPAIRS, RECURRING_RUNS_COALESCED
from modwatch.telemetry.rq_tracing import TracingSchedulerMixin, is_recurring

log = structlog.get_logger(__name__)
STANDBY_WARNING = "Lock already taken - skipping run"


class _StandbyIsNotAWarning(logging.Filter):
    """rq-scheduler warns on every loop of a scheduler that does not hold the lock; a standby is the
    design, not a fault: it says so once, at info (`scheduler_standby`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != STANDBY_WARNING


logging.getLogger("rq_scheduler.scheduler").addFilter(_StandbyIsNotAWarning())

# The loop never sleeps longer than this, whatever the intervals, so a reschedule is seen quickly.
MAX_LOOP_SECONDS = 5
# After Redis stopped answering, the scheduler tries again this often (it keeps its process and its lease).
REDIS_RETRY_SECONDS = 2
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
    Recurring("record_queue_stats", monitoring.record_queue_stats, "queue_stats_interval"),
    Recurring("file_pending_reports", tasks.file_pending_reports, "report_filing_interval"),
)
RECURRING_NAMES = tuple(spec.name for spec in RECURRING)
RECURRING_BY_ID = {spec.job_id: spec for spec in RECURRING}


def intervals(settings: Settings, connection: redis.Redis) -> dict[str, int]:
    """Configured intervals, with runtime overrides from `POST /jobs/scheduled/reschedule`."""
    overrides = {text(key): int(value) for key, value in connection.hgetall(SCHEDULER_INTERVALS_KEY).items()}
    return {spec.name: overrides.get(spec.name, getattr(settings, spec.setting)) for spec in RECURRING}


def loop_seconds(settings: Settings, connection: redis.Redis) -> int:
    return max(1, min(MAX_LOOP_SECONDS, *intervals(settings, connection).values()))


class LeaderScheduler(TracingSchedulerMixin, Scheduler):
    queue_class = ModwatchQueue

    def __init__(self, settings: Settings, connection: redis.Redis, owner: str | None = None) -> None:
        super().__init__(connection=connection, interval=loop_seconds(settings, connection), queue_class=ModwatchQueue)
        self.settings = settings
        # Who holds the lease: the process, so a scheduler rebuilt after a Redis outage keeps it.
        self.owner = owner or self.name
        self.leading = False
        self.standby = False

    @property
    def lease_seconds(self) -> int:
        return int(self._interval) * 3

    def acquire_lock(self) -> bool:
        self._lock_acquired = bool(
            self.connection.eval(_RENEW_OR_ACQUIRE, 1, SCHEDULER_LEADER_KEY, self.owner, self.lease_seconds)
        )
        if self._lock_acquired:
            if not self.leading:
                log.info("scheduler_leader", scheduler=self.owner)
            self.leading = True
            ensure_recurring(self, intervals(self.settings, self.connection))
        elif self.leading:
            self.leading = False
            # Only the leader speaks for the registrations.
            RECURRING_JOBS.clear()
        if not self._lock_acquired and not self.standby:
            leader = text(self.connection.get(SCHEDULER_LEADER_KEY) or b"")
            log.info("scheduler_standby", scheduler=self.owner, leader=leader)
        self.standby = not self._lock_acquired
        return self._lock_acquired

    def remove_lock(self) -> None:
        """Keep the lease between loops; it is released when the scheduler stops."""

    def heartbeat(self) -> None:
        super().heartbeat()
        self.connection.set(SCHEDULER_HEARTBEAT_KEY, time.time())

    def enqueue_job(self, job: Job) -> None:
        """rq-scheduler's move of a due job, coalescing a recurring run into one still pending."""
        spec = RECURRING_BY_ID.get(job.id)
        if spec is not None and is_recurring(job):
            interval = int(job.meta["interval"])
            next_run = coalesced_until(self.connection, job, interval)
            if next_run is not None:
                self.connection.zadd(self.scheduled_jobs_key, {job.id: next_run})
                RECURRING_RUNS_COALESCED.labels(function=spec.name).inc()
                log.info("recurring_run_coalesced", task=spec.name, status=str(job.get_status(refresh=False)))
                return
        super().enqueue_job(job)

    def register_death(self) -> None:
        self.connection.eval(_RELEASE_IF_OWNER, 1, SCHEDULER_LEADER_KEY, self.owner)
        super().register_death()


def coalesced_until(connection: redis.Redis, job: Job, interval: int) -> float | None:
    """When a due run of a recurring job should come instead, or None to enqueue it now.

    A run still waiting on its queue, or running on a live worker, takes the place of this one. A run
    that ended less than half an interval ago was a late one (the workers were back after an outage):
    the next comes one interval after it, not right behind it.
    """
    now = time.time()
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        # The status alone could outlive the queue entry (a queue emptied by hand); LPOS is O(depth). A worker
        # first moves the job to the queue's intermediate list and marks it started only in the work horse, a
        # fork later: in between it is still a pending run (missing it ran two polls 0.5 s apart under load).
        queue = ModwatchQueue(job.origin, connection=connection)
        for key in (queue.key, queue.intermediate_queue_key):
            if connection.lpos(key, job.id) is not None:
                return now + interval
    elif status == JobStatus.STARTED and job.worker_name:
        if connection.exists(Worker.redis_worker_namespace_prefix + job.worker_name):
            return now + interval
    elif job.ended_at is not None:
        ended = job.ended_at.replace(tzinfo=timezone.utc).timestamp() if job.ended_at.tzinfo is None else job.ended_at.timestamp()
        if now - ended < interval / 2:
            return ended + interval
    return None


REPAIR_REASONS = ("missing", "changed", "unscheduled", "expiring")


def ensure_recurring(scheduler: Scheduler, wanted: dict[str, int]) -> None:
    """Make the scheduled set hold exactly one job per recurring spec, at its interval: checked in
    two round trips, repaired where needed (every leader loop)."""
    with scheduler.connection.pipeline(transaction=False) as pipe:
        for spec in RECURRING:
            pipe.zscore(scheduler.scheduled_jobs_key, spec.job_id)
            # An expiry on a recurring job's hash would end it: remove it wherever it came from.
            pipe.persist(Job.key_for(spec.job_id))
        replies = pipe.execute()
    jobs = Job.fetch_many([spec.job_id for spec in RECURRING], connection=scheduler.connection)
    for index, (spec, job) in enumerate(zip(RECURRING, jobs)):
        score, had_expiry = replies[2 * index], replies[2 * index + 1]
        interval = wanted[spec.name]
        if job is None or job.meta.get("interval") != interval or job.func_name != _dotted(spec.function):
            reason = "missing" if job is None else "changed"
            if job is not None:
                scheduler.cancel(job)
            register(scheduler, spec, interval)
        elif score is None:
            # The hash is there, the schedule entry is not: due now (coalesced if a run is pending).
            reason = "unscheduled"
            scheduler.connection.zadd(scheduler.scheduled_jobs_key, {spec.job_id: time.time()}, nx=True)
        elif had_expiry:
            reason = "expiring"
        else:
            reason = None
        if reason is not None:
            RECURRING_REPAIRS.labels(function=spec.name, reason=reason).inc()
            log.warning("recurring_job_repaired", task=spec.name, reason=reason, interval=interval)
        RECURRING_JOBS.labels(function=spec.name).set(1)


def register(scheduler: Scheduler, spec: Recurring, interval: int) -> Job:
    options = JOB_OPTIONS[spec.function]
    job = scheduler.schedule(
        scheduled_time=datetime.now(timezone.utc),
        func=spec.function,
        interval=interval,
        id=spec.job_id,
        queue_name=options.queue,
        timeout=options.timeout,
        # Never an expiry after a success: rq-scheduler cancels a recurring job whose hash expired.
        result_ttl=-1,
    )
    # rq-scheduler takes no failure_ttl; RQ's default keeps a failed run for a year.
    job.failure_ttl = options.failure_ttl
    job.save()
    log.info("recurring_job_registered", task=spec.name, interval=interval)
    return job


def _dotted(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def recurring_status(connection: redis.Redis) -> list[dict[str, Any]]:
    # withscores=True: (member, score) pairs, which redis-py's return type does not single out.
    ranked = connection.zrange(Scheduler.scheduled_jobs_key, 0, -1, withscores=True)
    scores = dict(cast(list[tuple[bytes, float]], ranked))
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
        connection.hset(SCHEDULER_INTERVALS_KEY, name, interval)
        job = Job.fetch_many([spec.job_id], connection=connection)[0]
        if job is not None:
            job.meta["interval"] = interval
            job.save_meta()
    if run_now and connection.zscore(Scheduler.scheduled_jobs_key, spec.job_id) is not None:
        connection.zadd(Scheduler.scheduled_jobs_key, {spec.job_id: time.time()}, xx=True)
    return next(item for item in recurring_status(connection) if item["task_name"] == name)


def heartbeat_age(connection: redis.Redis) -> float | None:
    value = connection.get(SCHEDULER_HEARTBEAT_KEY)
    return None if value is None else max(0.0, time.time() - float(value))


def run_scheduler(settings: Settings, connection: redis.Redis, burst: bool = False) -> None:
    """Run the leader loop; when Redis stops answering, wait for it in the same process.

    rq-scheduler's loop ends on any Redis error; a scheduler that exits with Redis would page as a
    second incident (and restart into a crash loop) while the one cause is Redis.
    """
    for spec in RECURRING:  # counters start at 0, so the first increase is seen
        RECURRING_RUNS_COALESCED.labels(function=spec.name)
        for reason in REPAIR_REASONS:
            RECURRING_REPAIRS.labels(function=spec.name, reason=reason)
    owner = None
    while True:
        try:
            scheduler = LeaderScheduler(settings, connection, owner=owner)  # reads interval overrides
            owner = scheduler.owner
            scheduler.run(burst=burst)
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("scheduler_redis_unavailable", error=str(exc), retry_seconds=REDIS_RETRY_SECONDS)
            time.sleep(REDIS_RETRY_SECONDS)
