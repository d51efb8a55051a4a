"""Job functions for the metrics tests: importable by worker subprocesses through PYTHONPATH."""

from __future__ import annotations

import time

from modwatch.telemetry import metrics


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise RuntimeError("boom")


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def call_mastodon() -> None:
    """Records what the Mastodon client and the moderation pipeline record inside a work horse."""
    metrics.MASTODON_REQUESTS.labels(endpoint="/api/v2/admin/accounts", method="GET", status="200").inc()
    metrics.MASTODON_DURATION.labels(endpoint="/api/v2/admin/accounts", method="GET").observe(0.2)
    metrics.ACCOUNTS_SCANNED.labels(source="poll_remote").inc(3)


def enqueue_child() -> str:
    """A job that enqueues another one, as webhook and poll jobs do."""
    from modwatch.jobs.queues import get_queue

    return get_queue("moderation").enqueue("metricjobs.succeed").id
