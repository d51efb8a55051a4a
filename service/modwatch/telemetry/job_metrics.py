"""Job metrics: enqueued on the producer side, outcomes recorded by the worker's main process."""

from __future__ import annotations


class EnqueueMetricsMixin:
    """Mixed into ModwatchQueue."""


class JobMetricsWorkerMixin:
    """Mixed into the worker classes."""
