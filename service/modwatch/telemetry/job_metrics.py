"""Job metrics: enqueued on the producer side, outcomes recorded by the worker's main process.

RQ's forking Worker runs each job in a work horse that ends with os._exit, so whatever the job
records (Mastodon calls, moderation counters, jobs it enqueues) would die with it. The horse
pushes the changes it made (`metrics.changes_since`) onto a Redis list named after its worker;
the worker drains that list once the horse has exited and applies the changes to its own
registry. A SimpleWorker runs the job in its own process, records directly and pushes nothing.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import redis
import structlog
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from modwatch.telemetry import metrics
from modwatch.telemetry.job_traces import CREATED_KEY, EXECUTIONS_KEY

log = structlog.get_logger(__name__)

HORSE_CHANGES_KEY = "modwatch:metrics:horse:{worker}"
# Only matters when a worker dies between its horse's push and its drain.
HORSE_CHANGES_TTL = 3600


def function_label(job: Job) -> str:
    """The job function's own name: `process_new_status`, not its dotted path."""
    return job.func_name.rsplit(".", 1)[-1]


class EnqueueMetricsMixin:
    """Mixed into ModwatchQueue: counts each job put on a queue through `enqueue_job`.

    `enqueue`, `enqueue_call`, rq-scheduler and the webhook intake all come through here; RQ's
    own moves of an existing job (retries, due scheduled jobs) do not, so a job counts once.
    """

    def enqueue_job(self, job: Job, *args: Any, **kwargs: Any) -> Job:
        job = super().enqueue_job(job, *args, **kwargs)  # type: ignore[misc]
        metrics.JOBS_ENQUEUED.labels(queue=self.name, function=function_label(job)).inc()  # type: ignore[attr-defined]
        return job


def outcome(job: Job) -> str:
    """How the attempt that just ended went, from the job as Redis has it now."""
    try:
        job.refresh()
    except NoSuchJobError:
        # A failed job is kept for its failure_ttl; only a success with result_ttl=0 is gone at once.
        return "succeeded"
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        return "succeeded"
    if status == JobStatus.STOPPED:
        return "stopped"
    if status == JobStatus.FAILED:
        result = job.latest_result()
        timed_out = result is not None and result.type == Result.Type.FAILED and "JobTimeoutException" in (
            result.exc_string or ""
        )
        return "timed_out" if timed_out else "failed"
    # Queued, scheduled, deferred or already started again: it has another attempt coming.
    return "retried"


def trace_id(job: Job) -> str | None:
    """The trace of the latest execution, else the one the job was created in."""
    executions = job.meta.get(EXECUTIONS_KEY) or []
    return executions[-1] if executions else job.meta.get(CREATED_KEY)


def _seconds_since(moment: datetime | None, until: float) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, until - moment.timestamp())


def push_changes(connection: redis.Redis, worker_name: str, changes: list[metrics.Change]) -> None:
    key = HORSE_CHANGES_KEY.format(worker=worker_name)
    with connection.pipeline(transaction=False) as pipe:
        pipe.rpush(key, json.dumps(changes))
        pipe.expire(key, HORSE_CHANGES_TTL)
        pipe.execute()


def drain_changes(connection: redis.Redis, worker_name: str) -> None:
    """Apply every change list the worker's horses pushed."""
    key = HORSE_CHANGES_KEY.format(worker=worker_name)
    with connection.pipeline() as pipe:
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        pushed, _ = pipe.execute()
    for item in pushed:
        metrics.apply_changes(json.loads(item))


class JobMetricsWorkerMixin:
    """Mixed into the worker classes: one outcome, wait and run time per attempt, in the main process."""

    def fork_work_horse(self, job: Job, queue: Any) -> None:
        with metrics.FORK_LOCK:
            super().fork_work_horse(job, queue)  # type: ignore[misc]

    def perform_job(self, job: Job, queue: Any) -> bool:
        if not self.is_horse:  # type: ignore[attr-defined]
            return super().perform_job(job, queue)  # type: ignore[misc]
        before = metrics.snapshot()
        try:
            return super().perform_job(job, queue)  # type: ignore[misc]
        finally:
            try:
                push_changes(self.connection, self.name, metrics.changes_since(before))  # type: ignore[attr-defined]
            except Exception:  # the job's result is already saved: losing its metrics must not fail it
                log.warning("horse_metrics_lost", job_id=job.id, exc_info=True)

    def execute_job(self, job: Job, queue: Any) -> None:
        enqueued_at = job.enqueued_at
        started = time.time()
        started_clock = time.perf_counter()
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            try:
                self.record_attempt(job, enqueued_at, started, time.perf_counter() - started_clock)
            except Exception:  # a metrics failure must never stop the worker
                log.warning("job_metrics_lost", job_id=job.id, exc_info=True)

    def record_attempt(self, job: Job, enqueued_at: datetime | None, started: float, duration: float) -> None:
        drain_changes(self.connection, self.name)  # type: ignore[attr-defined]
        labels = {"queue": job.origin, "function": function_label(job)}
        ended = outcome(job)
        exemplar = {"trace_id": trace} if (trace := trace_id(job)) else None
        metrics.JOBS_FINISHED.labels(**labels, outcome=ended).inc()
        metrics.JOB_DURATION.labels(**labels, outcome=ended).observe(duration, exemplar)
        # enqueued_at is when the job was put on the queue, or moved there once due (RQ resets it).
        waited = _seconds_since(enqueued_at, started)
        if waited is not None:
            metrics.JOB_WAIT.labels(**labels).observe(waited, exemplar)
