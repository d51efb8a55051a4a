"""OpenTelemetry instrumentation of RQ: PRODUCER spans on enqueue, CONSUMER spans in the worker.

The classes that call these live in `modwatch.jobs.rq_integration`. Every way a job enters a
queue ends in `Queue._enqueue_job` (enqueue, enqueue_many, dependents,
retries without a backoff, due jobs moved by either scheduler) or `Queue.schedule_job`
(enqueue_at/in, retries with a backoff); both open a `send <queue>` span and put its context into
`job.meta` before RQ saves the job, inside the caller's pipeline when there is one. The worker's
`process <queue>` span continues that context, so one trace runs from the request that created a
job through every retry to its last attempt.

Parent of a `send` span: the active span when there is one (the request, or the attempt that is
being retried), else the context the job carries (a due job moved by a scheduler process). A
recurring rq-scheduler job is the exception: each run starts a fresh trace that links to where the
job was registered, so no trace grows for as long as the job recurs.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from modwatch.telemetry.job_traces import (
    CONTEXT_KEY,
    CREATED_KEY,
    REGISTERED_CONTEXT_KEY,
    REQUEST_ID_KEY,
    record_execution,
)
from modwatch.telemetry.request_context import current_request_id
from modwatch.telemetry.trace_ids import current_trace_id, trace_id_of

tracer = trace.get_tracer("modwatch.rq")
# rq-scheduler keeps a recurring job's schedule in these meta keys.
RECURRING_META_KEYS = ("interval", "cron_string")


def is_recurring(job: Any) -> bool:
    return any(job.meta.get(key) is not None for key in RECURRING_META_KEYS)


def messaging_attributes(operation_type: str, rq_operation: str, queue_name: str, job: Any) -> dict[str, Any]:
    """The messaging semconv attributes; `messaging.operation.name` is the span name's verb (send, process),
    and which RQ operation it was (enqueue, schedule, perform) is `messaging.rq.operation`."""
    attributes = {
        "messaging.system": "rq",
        "messaging.destination.name": queue_name,
        "messaging.message.id": job.id,
        "messaging.operation.type": operation_type,
        "messaging.operation.name": operation_type,
        "messaging.rq.operation": rq_operation,
        "messaging.rq.function": job.func_name,
    }
    if job.retries_left is not None:
        attributes["messaging.rq.retries_left"] = job.retries_left
    return attributes


def _span_context(carrier: dict[str, str] | None) -> tuple[otel_context.Context, trace.SpanContext]:
    # A new job carries nothing: skip the propagators (a tenth of the cost of a send span).
    extracted = propagate.extract(carrier) if carrier else otel_context.Context()
    return extracted, trace.get_current_span(extracted).get_span_context()


def _send_parent(job: Any) -> tuple[otel_context.Context | None, list[Link]]:
    """The parent context of a `send` span and its links (see the module docstring)."""
    if is_recurring(job):
        registered, registered_span = _span_context(job.meta.get(REGISTERED_CONTEXT_KEY))
        links = [Link(registered_span, {"messaging.rq.link": "registered"})] if registered_span.is_valid else []
        # A root span, keeping the registration's baggage.
        return trace.set_span_in_context(trace.INVALID_SPAN, registered), links
    carried, carried_span = _span_context(job.meta.get(CONTEXT_KEY))
    active = trace.get_current_span().get_span_context()
    if not active.is_valid:
        return carried, []
    if carried_span.is_valid and carried_span.trace_id != active.trace_id:
        # Put back on a queue from another trace (a requeue by hand): keep the way back.
        return None, [Link(carried_span, {"messaging.rq.link": "previous"})]
    return None, []


class SendSpan:
    """The PRODUCER span around putting `job` on a queue: enter it before RQ saves the job.

    Written out rather than built on `start_as_current_span`: an enqueue is a few hundred
    microseconds, and the SDK's context-manager layers would add a tenth to it. The span is not
    made current (RQ makes no spans or log lines of interest while it saves a job); its context
    goes into `job.meta` for the worker to continue.
    """

    __slots__ = ("job", "name", "attributes", "span")

    def __init__(self, queue_name: str, job: Any, operation_name: str, **extra: Any) -> None:
        self.job, self.name = job, f"send {queue_name}"
        self.attributes = messaging_attributes("send", operation_name, queue_name, job)
        self.attributes.update(extra)

    def __enter__(self) -> trace.Span:
        job = self.job
        parent, links = _send_parent(job)
        self.span = span = tracer.start_span(self.name, context=parent, kind=SpanKind.PRODUCER,
                                             attributes=self.attributes, links=links)
        carrier: dict[str, str] = {}
        job.meta[CONTEXT_KEY] = carrier
        propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
        if CREATED_KEY not in job.meta:
            job.meta[CREATED_KEY] = trace_id_of(span)
        request_id = current_request_id()
        if request_id and REQUEST_ID_KEY not in job.meta:
            job.meta[REQUEST_ID_KEY] = request_id
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is not None:
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{exc_type.__name__}: {exc}"))
        self.span.end()


if TYPE_CHECKING:  # for the type checker only: at run time the Scheduler it is mixed into comes after it
    from rq_scheduler import Scheduler as _SchedulerBase
else:
    _SchedulerBase = object


class TracingSchedulerMixin(_SchedulerBase):
    """Mixed into rq-scheduler's Scheduler: registering a job records the context its runs link to."""

    def schedule(self, scheduled_time: datetime, func: Any, *args: Any, **kwargs: Any) -> Any:
        queue_name = kwargs.get("queue_name") or self.queue_name
        name = f"{func.__module__}.{func.__qualname__}" if callable(func) else str(func)
        attributes = {
            "messaging.system": "rq",
            "messaging.destination.name": queue_name,
            "messaging.operation.type": "create",
            "messaging.operation.name": "register",
            "messaging.rq.function": name,
        }
        if kwargs.get("id"):
            attributes["messaging.message.id"] = kwargs["id"]
        with tracer.start_as_current_span(f"register {queue_name}", kind=SpanKind.PRODUCER, attributes=attributes):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            kwargs["meta"] = {**(kwargs.get("meta") or {}), REGISTERED_CONTEXT_KEY: carrier, CREATED_KEY: current_trace_id()}
            return super().schedule(scheduled_time, func, *args, **kwargs)


def start_attempt_span(worker_name: str, job: Any, queue: Any) -> trace.Span:
    """The `process <queue>` span of one attempt, started in the worker process and not made current."""
    parent, _ = _span_context(job.meta.get(CONTEXT_KEY))
    attributes = messaging_attributes("process", "perform", queue.name, job)
    attributes["messaging.rq.worker.name"] = worker_name
    if job.enqueued_at is not None:
        enqueued_at = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=timezone.utc)
        attributes["messaging.rq.wait_seconds"] = max(0.0, time.time() - enqueued_at.timestamp())
    span = tracer.start_span(f"process {queue.name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes)
    trace_id = trace_id_of(span)
    if trace_id:  # none when the SDK is disabled
        # Saved with RQ's start of execution (rq_integration.ModwatchJob.prepare_for_execution).
        span.set_attribute("messaging.rq.attempt", record_execution(job, trace_id))
    return span


def span_state(span: Any) -> dict[str, Any]:
    """What a work horse did to its attempt's span, for its worker to apply (JSON-safe)."""
    return {
        "attributes": dict(span.attributes),
        "events": [[event.name, dict(event.attributes or {}), event.timestamp] for event in span.events],
        "status": [span.status.status_code.value, span.status.description],
        "end": time.time_ns(),
    }


def end_attempt_span(span: Any, horse_state: dict[str, Any] | None, failure: str | None) -> None:
    """End an attempt's span in the worker: with what its horse reported, or with the failure RQ recorded."""
    end_time = None
    if horse_state is not None:
        span.set_attributes(horse_state["attributes"])
        for name, attributes, timestamp in horse_state["events"]:
            span.add_event(name, attributes, timestamp)
        code, description = horse_state["status"]
        if code != StatusCode.UNSET.value:
            span.set_status(Status(StatusCode(code), description))
        end_time = horse_state["end"]
    elif failure and span.is_recording() and span.status.status_code is StatusCode.UNSET:
        # The horse died without a report (killed, out of memory): RQ's own account of it.
        span.set_attribute("error.type", "WorkHorseTerminated")
        span.set_status(Status(StatusCode.ERROR, failure[:200]))
    span.end(end_time)
