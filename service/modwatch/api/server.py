"""The API's HTTP server: uvicorn with a deadline and size limits on each request's head.

uvicorn has no deadline for the request line and headers (a connection that trickles a header a
minute stays open for good) and, with httptools, no limit on their size or number (16 MB headers
and 200,000 header fields were answered). A slow head holds no thread, but it holds memory and a
connection; this protocol answers 408 when the head is not complete within REQUEST_HEADER_TIMEOUT
and 431 when it outgrows REQUEST_MAX_HEADER_BYTES or REQUEST_MAX_HEADERS, and closes the
connection. The body's deadline and size are the ASGI middleware's (`modwatch.api.intake`).

uvicorn takes a protocol class as its `http` option; the class extends uvicorn's httptools
protocol, not a public API: tests/faults/test_hostile_clients.py breaks if its hooks change.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from modwatch.settings import Settings
from modwatch.telemetry.http_metrics import UNMATCHED_ROUTE, series

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HeadLimits:
    timeout: float
    max_bytes: int
    max_fields: int


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the status is answered by `send_400_response`."""


class LimitedHttpProtocol(HttpToolsProtocol):
    limits: HeadLimits  # set on the subclass `protocol_class` makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_fields = 0
        self._reading_head = True
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(self.limits.timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._reading_head:
            if self._head_timer is None:  # the next request on a kept-alive connection
                self._head_timer = self.loop.call_later(self.limits.timeout, self._head_too_slow)
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, when the head is still incomplete: a chunk that ends the head and
        # starts the body is not the head's size. Memory stays within the limit plus one read.
        if self._reading_head and self._head_bytes > self.limits.max_bytes and self._refusal is None:
            self._refuse(431, f"request header fields exceed {self.limits.max_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_fields = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.limits.max_fields:
            self._refusal = (431, f"more than {self.limits.max_fields} request header fields")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_bytes:
            self._refusal = (431, f"request header fields exceed {self.limits.max_bytes} bytes")
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error here, including one our callbacks raise on purpose.
        if self._refusal is None:
            self._refusal = (400, msg)
        self._answer_and_close(*self._refusal)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._reading_head and self._refusal is None and not self.transport.is_closing():
            if self._head_bytes == 0:
                self.transport.close()  # nothing asked, nothing to answer: an idle connection
                return
            self._refuse(408, f"request headers not received within {self.limits.timeout:g} s")

    def _refuse(self, status: int, reason: str) -> None:
        self._refusal = (status, reason)
        self._answer_and_close(status, reason)

    def _answer_and_close(self, status: int, reason: str) -> None:
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        body = json.dumps({"detail": reason}).encode()
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        series(UNMATCHED_ROUTE, "_OTHER", status)[0].inc()
        log.info("request_refused", status=status, reason=reason, client=self.client[0] if self.client else None)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


def protocol_class(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol with this process's limits (uvicorn builds one instance per connection from a class)."""
    limits = HeadLimits(settings.request_header_timeout, settings.request_max_header_bytes, settings.request_max_headers)
    return type("ModwatchHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})


def serve(app: Any, settings: Settings, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, http=protocol_class(settings))
