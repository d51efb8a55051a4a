"""Job functions for the tracing tests (run in-process by SimpleWorker)."""

from __future__ import annotations

import structlog
from opentelemetry import trace

from modwatch.telemetry.trace_ids import current_span_id, current_trace_id

tracer = trace.get_tracer("tests.tracing")


class ExpectedFailure(Exception):
    pass


def traced_work() -> dict:
    """Opens a span of its own and reports what a log line in the job would carry."""
    with tracer.start_as_current_span("inner work"):
        pass
    return {"trace_id": current_trace_id(), "span_id": current_span_id(), **structlog.contextvars.get_contextvars()}


def fail() -> None:
    raise ExpectedFailure("no luck")


def add(a: int, b: int) -> int:
    return a + b


def annotate_current_span() -> None:
    trace.get_current_span().set_attribute("modwatch.test.note", "set in the job")


def die_abruptly() -> None:
    """Ends the work horse the way a kill from outside would: no result, no report."""
    import os

    os._exit(9)
