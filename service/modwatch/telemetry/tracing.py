"""OpenTelemetry setup for each process kind."""

from __future__ import annotations


def configure(process: str) -> None:
    """Tracing arrives with the tracing work; until then spans go to the no-op provider."""
