"""OpenTelemetry setup for each process kind."""

from __future__ import annotations


def configure(process: str) -> None:
    """Tracing arrives with the tracing work; until then spans go to the no-op provider."""


def instrument_app(app) -> None:
    """Server spans for the FastAPI app; arrives with the tracing work."""
