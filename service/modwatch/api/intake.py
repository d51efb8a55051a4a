"""Request intake: every body is read in the event loop, under a deadline and a size limit, before
an endpoint's thread is taken; webhook deliveries run a bounded number at a time.

Sync endpoints share one thread pool (anyio's 40 threads) with /livez, /metrics and /jobs. A body
read from an endpoint holds its thread while the client sends, so 40 clients each sending one byte
of a 100-byte body froze the whole API. Read here, a slow body costs a coroutine and its buffer;
after REQUEST_BODY_TIMEOUT it is answered 408 and the connection closed. A client that hangs up
mid-body is no server error: nothing is answered, it is logged at info and counted with status 499
(nginx's "client closed request"). Webhook deliveries, the one route open to the internet, take at
most WEBHOOK_MAX_CONCURRENCY threads; a delivery that waits WEBHOOK_QUEUE_TIMEOUT for one is
answered 503 with Retry-After, so Mastodon redelivers.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modwatch.api.body import SCOPE_KEY
from modwatch.api.webhooks import PATH as WEBHOOK_PATH
from modwatch.api.webhooks import RETRY_AFTER_SECONDS, deliveries
from modwatch.settings import Settings
from modwatch.telemetry.http_metrics import UNMATCHED_ROUTE, series

log = structlog.get_logger(__name__)
CLIENT_CLOSED_REQUEST = 499


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    # Closed after the answer: the rest of a refused body is never read.
    extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


class IntakeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.body_timeout = settings.request_body_timeout
        self.max_body = settings.request_max_body_bytes
        self.webhook_max_body = settings.webhook_max_body_bytes
        self.webhook_wait = settings.webhook_queue_timeout
        self.webhook_slots = asyncio.Semaphore(settings.webhook_max_concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        webhook = scope["path"] == WEBHOOK_PATH
        limit = self.webhook_max_body if webhook else self.max_body
        declared = _declared_length(scope)
        try:
            if declared is not None and declared > limit:
                raise _TooLarge
            async with asyncio.timeout(self.body_timeout):
                body = await _read_body(receive, limit)
        except _TooLarge:
            if webhook:
                deliveries("unknown", "too_large").inc()
            await _answer(send, 413, f"body exceeds {limit} bytes")
            return
        except TimeoutError:
            await _answer(send, 408, f"request body not received within {self.body_timeout:g} s")
            return
        except _ClientGone:
            series(UNMATCHED_ROUTE, scope["method"], CLIENT_CLOSED_REQUEST)[0].inc()
            log.info("client_disconnected", path=scope["path"], method=scope["method"], phase="body")
            return
        scope[SCOPE_KEY] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: only a disconnect can come
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        if not webhook:
            await self.app(scope, replay, send)
            return
        try:
            async with asyncio.timeout(self.webhook_wait):
                await self.webhook_slots.acquire()
        except TimeoutError:
            deliveries("unknown", "overloaded").inc()
            await _answer(send, 503, "too many deliveries in progress, retry later", {"Retry-After": RETRY_AFTER_SECONDS})
            return
        try:
            await self.app(scope, replay, send)
        finally:
            self.webhook_slots.release()
