"""Trace ids as hex strings, the form trace backends and logs use."""

from __future__ import annotations

from opentelemetry import trace


def trace_id_of(span: trace.Span) -> str | None:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())


def current_span_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None
