"""OpenTelemetry instrumentation of RQ: PRODUCER spans on enqueue, CONSUMER spans in the worker."""

from __future__ import annotations


class TracingQueueMixin:
    """Mixed into ModwatchQueue."""


class TracingWorkerMixin:
    """Mixed into the worker classes."""
