"""Job metrics: enqueued on the producer side, outcomes recorded by the worker's main process.

RQ's forking Worker runs each job in a work horse that ends with os._exit, so whatever the job
records (Mastodon calls, moderation counters, jobs it enqueues) would die with it. The horse
sends its worker one report as the last thing it does, through a pipe (`jobs.rq_integration.
HorsePipe`): how the attempt ended and its trace id (from the job as the horse left it),
the metric changes it made since the fork (`metrics.changes_since`, against a snapshot the
worker took just before forking) and its finished spans (`tracing.take_held_spans`). The worker
applies the changes to its own registry and exports the spans. Only when a horse died without
reporting (killed, stopped, crashed) does the worker read the job from Redis to classify the
attempt. A SimpleWorker runs the job in its own process: it records directly, from the job it
holds, and sends nothing.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from modwatch.telemetry import metrics, tracing
from modwatch.telemetry.job_traces import CREATED_KEY, EXECUTIONS_KEY

# A horse's report: {"job_id", "outcome", "trace_id", "metrics": [metrics.Change], "spans": base64
# of an OTLP ExportTraceServiceRequest, absent when there are none, "span": the end state of the
# attempt's own span (rq_tracing.span_state), absent when it is not recorded}.
Report = dict[str, Any]


def function_label(job: Job) -> str:
    """The job function's own name: `process_new_status`, not its dotted path."""
    return (job.func_name or "").rsplit(".", 1)[-1]


@metrics.kept_series
def enqueued_counter(queue: str, function: str) -> Any:
    """The enqueue counter's series, kept: labels() validates its arguments on every call."""
    return metrics.JOBS_ENQUEUED.labels(queue=queue, function=function)


@metrics.kept_series
def attempt_series(queue: str, function: str, outcome: str) -> tuple[Any, Any]:
    """The finished counter and run-time histogram series of one outcome, kept as `enqueued_counter`'s."""
    return (metrics.JOBS_FINISHED.labels(queue=queue, function=function, outcome=outcome),
            metrics.JOB_DURATION.labels(queue=queue, function=function, outcome=outcome))


@metrics.kept_series
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


def record_attempt(job: Job, report: Report | None, enqueued_at: datetime | None, started: float,
                   duration: float) -> str:
    """Count one attempt and observe its wait and run time; returns its outcome.

    From the report of the process that ran it, or, when a horse died without reporting (killed,
    stopped), from the job as Redis has it now.
    """
    if report is not None:
        ended, trace = report["outcome"], report["trace_id"]
    else:
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
    return ended
