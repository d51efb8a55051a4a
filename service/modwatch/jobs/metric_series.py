"""Labelled counters and histograms start at 0 in each process.

Prometheus knows a series from its first sample: a counter that appears at 1 (the first 429, the first
failed job, the first bad signature of a process) shows no increase() and no rate(), so alerts on it
stay silent for the one event that matters. Every series whose label values are a closed set is
created at start; open sets (endpoint templates, rule names) are not guessed.
"""

from __future__ import annotations

from modwatch.jobs.enqueue import JOB_OPTIONS, WEBHOOK_JOBS
from modwatch.mastodon.families import FAMILIES
from modwatch.telemetry import metrics

JOB_OUTCOMES = ("succeeded", "failed", "retried", "timed_out", "stopped")
WEBHOOK_OUTCOMES = ("accepted", "duplicate", "bad_signature", "malformed", "too_large", "ignored_event",
                    "unavailable", "not_configured")


def start_at_zero(process: str) -> None:
    """Create the process's closed-set series at 0 (api: webhook deliveries; worker: jobs and gate waits)."""
    if process == "api":
        for event in WEBHOOK_JOBS:
            for outcome in WEBHOOK_OUTCOMES:
                metrics.WEBHOOK_DELIVERIES.labels(event=event, outcome=outcome)
    if process == "worker":
        for function, options in JOB_OPTIONS.items():
            metrics.JOB_WAIT.labels(queue=options.queue, function=function.__name__)
            for outcome in JOB_OUTCOMES:
                metrics.JOBS_FINISHED.labels(queue=options.queue, function=function.__name__, outcome=outcome)
        for family in FAMILIES:  # client-side throttling: the shared gate held a request back
            metrics.RATELIMIT_WAITS.labels(family=family)
