"""The FastAPI application: routers per resource, one settings object."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from modwatch import __version__
from modwatch.api import health, moderation, webhooks
from modwatch.jobs import api as jobs_api
from modwatch.settings import Settings, get_settings
from modwatch.telemetry.http_metrics import HttpMetricsMiddleware
from modwatch.telemetry.tracing import instrument_app


class ModwatchAPI(FastAPI):
    def build_middleware_stack(self) -> Any:
        # Outermost, so error responses from Starlette's own middleware are measured too.
        return HttpMetricsMiddleware(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    app = ModwatchAPI(
        title="modwatch",
        version=__version__,
        description="Moderation sidecar for Mastodon: signed webhooks, job control and moderation API.",
    )
    app.state.settings = settings or get_settings()
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(jobs_api.router)
    app.include_router(moderation.router)
    instrument_app(app)
    return app
