"""The FastAPI application: routers per resource, one settings object."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware

from modwatch import __version__
from modwatch.api import health, moderation, stream, webhooks
from modwatch.api.docs import install_docs
from modwatch.api.intake import IntakeMiddleware
from modwatch.api import jobs as jobs_api
from modwatch.api.problems import INTAKE
from modwatch.settings import Settings, get_settings
from modwatch.telemetry.http_metrics import HttpMetricsMiddleware
from modwatch.telemetry.request_context import RequestContextMiddleware
from modwatch.telemetry.tracing import instrument_app


class ModwatchAPI(FastAPI):
    def build_middleware_stack(self) -> Any:
        # Around Starlette's error middleware, so its 500s are measured too and carry a request id.
        # Starlette's stack starts with ServerErrorMiddleware, and so must ours: the tracing
        # instrumentation wraps the app inside it, which puts metrics and request ids in the span.
        # The intake reads the body before anything takes a thread, inside the request id and metrics.
        stack = IntakeMiddleware(super().build_middleware_stack(), self.state.settings)
        return ServerErrorMiddleware(HttpMetricsMiddleware(RequestContextMiddleware(stack)))


def create_app(settings: Settings | None = None) -> FastAPI:
    app = ModwatchAPI(
        title="modwatch",
        version=__version__,
        description="Moderation sidecar for Mastodon: signed webhooks, job control and moderation API.",
        # Spans come from the OpenTelemetry instrumentation (`instrument_app`); FastAPI's own
        # telemetry stands aside when it sees it, but would still wrap every request to find out.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        responses=INTAKE,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: `install_docs` serves our own copy
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    # Routes are matched in order, by the router and again by the tracing instrumentation to name
    # the span: the busiest one, Mastodon's webhook deliveries, comes first.
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(jobs_api.router)
    app.include_router(moderation.router)
    app.include_router(stream.router)
    install_docs(app)
    instrument_app(app)
    return app
