"""Job metrics: enqueued on the producer side, outcomes recorded by the worker's main process.

RQ's forking Worker runs each job in a work horse that ends with os._exit, so whatever the job
records (Mastodon calls, moderation counters, jobs it enqueues) would die with it. The horse
sends its worker one report as the last thing it does, through a pipe (`jobs.worker.
HorsePipeMixin`): how the attempt ended and its trace id (from the job as the horse left it),
the metric changes it made since the fork (`metrics.changes_since`, against a snapshot the
worker took just before forking) and its finished spans (`tracing.take_held_spans`). The worker
applies the changes to its own registry and exports the spans. Only when a horse died without
reporting (killed, stopped, crashed) does the worker read the job from Redis to classify the
attempt. A SimpleWorker runs the job in its own process: it records directly, from the job it
holds, and sends nothing.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from datetime import datetime, timezone
from typing import Any

import structlog
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from modwatch.telemetry import metrics, tracing
from modwatch.telemetry.job_traces import CREATED_KEY, EXECUTIONS_KEY

log = structlog.get_logger(__name__)

# A horse's report: {"job_id", "outcome", "trace_id", "metrics": [metrics.Change], "spans": base64
# of an OTLP ExportTraceServiceRequest, absent when there are none, "span": the end state of the
# attempt's own span (rq_tracing.span_state), absent when it is not recorded}.
Report = dict[str, Any]


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
        enqueued_counter(self.name, function_label(job)).inc()  # type: ignore[attr-defined]
        return job


@functools.lru_cache(maxsize=1024)
def enqueued_counter(queue: str, function: str) -> Any:
    """The enqueue counter's series, kept: labels() validates its arguments on every call."""
    return metrics.JOBS_ENQUEUED.labels(queue=queue, function=function)


@functools.lru_cache(maxsize=1024)
def attempt_series(queue: str, function: str, outcome: str) -> tuple[Any, Any]:
    """The finished counter and run-time histogram series of one outcome, kept as `enqueued_counter`'s."""
    return (metrics.JOBS_FINISHED.labels(queue=queue, function=function, outcome=outcome),
            metrics.JOB_DURATION.labels(queue=queue, function=function, outcome=outcome))


@functools.lru_cache(maxsize=1024)
def wait_series(queue: str, function: str) -> Any:
    return metrics.JOB_WAIT.labels(queue=queue, function=function)


def classify(status: str | None, failure: str | None) -> str:
    """An attempt's outcome from the job's status after it and, if it failed, its exception text."""
    if status == JobStatus.FINISHED:
        return "succeeded"
    if status == JobStatus.STOPPED:
        return "stopped"
    if status == JobStatus.FAILED:
        return "timed_out" if "JobTimeoutException" in (failure or "") else "failed"
    # Queued, scheduled, deferred or already started again: it has another attempt coming.
    return "retried"


def outcome(job: Job) -> str:
    """How the attempt that just ended went, from the job as Redis has it now."""
    try:
        job.refresh()
    except NoSuchJobError:
        # A failed job is kept for its failure_ttl; only a success with result_ttl=0 is gone at once.
        return "succeeded"
    status = job.get_status(refresh=False)
    failure = None
    if status == JobStatus.FAILED:
        result = job.latest_result()
        failure = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
    return classify(status, failure)


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


def apply_report(report: Report) -> None:
    metrics.apply_changes(report["metrics"])
    if "spans" in report:
        tracing.export_handed_over(base64.b64decode(report["spans"]))


class JobMetricsWorkerMixin:
    """Mixed into the worker classes: one outcome, wait and run time per attempt, in the main process."""

    # The attempt as the process that ran it saw it: its exception text, and in a SimpleWorker its report.
    _attempt_failure: str | None = None
    _attempt_report: Report | None = None
    _metrics_at_fork: metrics.Snapshot = {}

    def fork_work_horse(self, job: Job, queue: Any) -> None:
        with metrics.FORK_LOCK:
            # The horse starts from these values. Taken here, in the worker, it reads warm memory;
            # in the horse, every object it touches would first be copied from the worker.
            self._metrics_at_fork = metrics.snapshot()
            super().fork_work_horse(job, queue)  # type: ignore[misc]

    def handle_job_failure(self, job: Job, queue: Any, started_job_registry: Any = None, exc_string: str = "") -> None:
        self._attempt_failure = exc_string
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)  # type: ignore[misc]

    def perform_job(self, job: Job, queue: Any) -> bool:
        self._attempt_failure = None
        if not self.is_horse:  # type: ignore[attr-defined]
            try:
                return super().perform_job(job, queue)  # type: ignore[misc]
            finally:
                self._attempt_report = self.report(job)
        tracing.hold_spans()
        # An exception out of RQ's perform_job ends the horse with status 1 and no report: the
        # worker then reads the attempt's outcome from Redis.
        performed = super().perform_job(job, queue)  # type: ignore[misc]
        try:
            report = self.report(job)
            report["metrics"] = metrics.changes_since(self._metrics_at_fork)
            if spans := tracing.take_held_spans():
                report["spans"] = base64.b64encode(spans).decode()
            self.send_to_worker(json.dumps(report).encode())  # type: ignore[attr-defined]  # jobs.worker.HorsePipeMixin
        except Exception:  # the job's result is already saved: losing its telemetry must not fail it
            log.warning("horse_metrics_lost", job_id=job.id, exc_info=True)
        return performed

    def report(self, job: Job) -> Report:
        """The attempt that just ended, from the job this process ran it with."""
        return {
            "job_id": job.id,
            "outcome": classify(job.get_status(refresh=False), self._attempt_failure),
            "trace_id": trace_id(job),
        }

    def execute_job(self, job: Job, queue: Any) -> None:
        self._attempt_report = None
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

    def horse_report(self, job: Job) -> Report | None:
        """Apply the report `job`'s horse sent (`jobs.worker.HorsePipeMixin`); None when it sent none."""
        message = getattr(self, "horse_message", None)
        if message is None:
            return None
        report = json.loads(message)
        apply_report(report)
        return report

    def record_attempt(self, job: Job, enqueued_at: datetime | None, started: float, duration: float) -> None:
        report = self._attempt_report = self._attempt_report or self.horse_report(job)
        if report is not None:
            ended, trace = report["outcome"], report["trace_id"]
        else:  # the horse died without reporting (killed, stopped): ask Redis
            ended, trace = outcome(job), trace_id(job)
        function = function_label(job)
        exemplar = {"trace_id": trace} if trace else None
        finished, run_time = attempt_series(job.origin, function, ended)
        finished.inc()
        run_time.observe(duration, exemplar)
        # enqueued_at is when the job was put on the queue, or moved there once due (RQ resets it).
        waited = _seconds_since(enqueued_at, started)
        if waited is not None:
            wait_series(job.origin, function).observe(waited, exemplar)
