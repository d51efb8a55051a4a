"""The monitoring job. A module of its own, apart from `modwatch.jobs.tasks`: a worker imports a
job's module before the fork, and this one must not bring the moderation stack with it (a worker on
the monitoring queue alone stays small and forks fast; tests/core/test_import_graph.py checks)."""

from __future__ import annotations

from typing import Any

from modwatch.jobs.queues import PRIORITY
from modwatch.telemetry import queue_stats


def record_queue_stats() -> dict[str, Any]:
    """Recurring on the monitoring queue: proves scheduler -> queue -> worker works and stores when it did."""
    return queue_stats.record(PRIORITY)
