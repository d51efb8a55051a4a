"""HTTP RED metrics by route template.

A plain ASGI wrapper written without coroutines of its own: it watches the response messages as
they pass and records once the last body chunk is sent. It wraps the whole middleware stack, so
500s produced by Starlette's error middleware are counted too.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from modwatch.telemetry.metrics import HTTP_DURATION, HTTP_REQUESTS

UNMATCHED_ROUTE = "unmatched"


class HttpMetricsMiddleware:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        started = time.perf_counter()
        response_status: list[int] = []

        def observe(message: dict[str, Any]) -> Any:
            if message["type"] == "http.response.start":
                response_status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                route = scope.get("route")
                labels = {
                    "route": getattr(route, "path", UNMATCHED_ROUTE),
                    "method": scope["method"],
                    "status": str(response_status[0] if response_status else 500),
                }
                HTTP_REQUESTS.labels(**labels).inc()
                HTTP_DURATION.labels(**labels).observe(time.perf_counter() - started)
            return send(message)

        return self.app(scope, receive, observe)
