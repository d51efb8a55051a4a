"""Logging, tracing and metrics set-up shared by every process."""

from __future__ import annotations

from structlog.typing import EventDict, WrappedLogger

from modwatch.settings import Settings


def init_process(process: str, settings: Settings) -> None:
    """Call once at the start of each process kind: api, worker, scheduler, run."""
    from modwatch.telemetry import logging, metrics, tracing

    service = tracing.service_name(process)

    def add_service(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        # Every line names the component that wrote it, as its spans do (service.name).
        event.setdefault("service", service)
        return event

    logging.extra_processors.append(add_service)
    logging.configure(settings.log_level, settings.log_format)
    tracing.configure(process, local_store=settings.local_traces)
    metrics.set_build_info(process)
