"""A request id for every HTTP request: taken from `X-Request-ID` or generated, echoed in the answer.

A plain ASGI wrapper without coroutines of its own: the id is bound before the wrapped app's
coroutine is created, in the task that serves this one request, so the endpoint's thread (which
gets a copy of that context) and every log line of the request see it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Awaitable

import structlog
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
SPAN_ATTRIBUTE = "modwatch.request_id"
# A caller's id is kept only when it is short and plain: it ends up in logs and job metadata.
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("modwatch_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == HEADER.encode():
            offered = value.decode("latin-1")
            if ACCEPTED_ID.match(offered):
                return offered
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # Not a coroutine: it returns the app's awaitable, one coroutine frame fewer per request.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        request_id = request_id_from(scope.get("headers", []))
        _request_id.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # The server span is already current here: a request id given by a caller finds its trace.
        trace.get_current_span().set_attribute(SPAN_ATTRIBUTE, request_id)

        def echo(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            return send(message)

        return self.app(scope, receive, echo)
