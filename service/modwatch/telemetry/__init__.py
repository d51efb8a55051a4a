"""Logging, tracing and metrics set-up shared by every process."""

from __future__ import annotations

from modwatch.settings import Settings


def init_process(process: str, settings: Settings) -> None:
    """Call once at the start of each process kind: api, worker, scheduler, run."""
    from modwatch.telemetry import logging, metrics, tracing

    logging.configure(settings.log_level, settings.log_format)
    tracing.configure(process, local_store=settings.local_traces)
    metrics.set_build_info(process)
