"""HTTP RED metrics by route template.

A plain ASGI wrapper written without coroutines of its own: it watches the response messages as
they pass and records once the last body chunk is sent. It wraps the whole middleware stack, so
500s produced by Starlette's error middleware are counted too.
"""

from __future__ import annotations

import time
from typing import Awaitable

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modwatch.telemetry.metrics import HTTP_DURATION, HTTP_REQUESTS, kept_series

UNMATCHED_ROUTE = "unmatched"


@kept_series
def series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    """The counter and histogram series of one route, method and status, kept: labels() validates
    its arguments on every call. Routes are templates, so the combinations are few."""
    labels = {"route": route, "method": method, "status": str(status)}
    return HTTP_REQUESTS.labels(**labels), HTTP_DURATION.labels(**labels)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # Not a coroutine: it returns the app's awaitable, one coroutine frame fewer per request.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        started = time.perf_counter()
        response_status: list[int] = []

        def observe(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                response_status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                requests, duration = series(
                    getattr(scope.get("route"), "path", UNMATCHED_ROUTE), scope["method"],
                    response_status[0] if response_status else 500,
                )
                requests.inc()
                duration.observe(time.perf_counter() - started)
            return send(message)

        return self.app(scope, receive, observe)
