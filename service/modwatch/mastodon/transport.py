"""The requests session Mastodon.py sends through: metrics, a CLIENT span and the last answer per call."""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from opentelemetry import trace

from modwatch.telemetry.metrics import (
    MASTODON_DURATION,
    MASTODON_RATE_LIMITED,
    MASTODON_REQUESTS,
)

tracer = trace.get_tracer("modwatch.mastodon")
NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")
SECRET_PARAMS = {"access_token", "token", "client_secret", "code"}
MAX_KEPT_CALLS = 256


def endpoint_template(path: str) -> str:
    """`/api/v1/accounts/123/statuses/` -> `/api/v1/accounts/:id/statuses`: bounded metric labels."""
    return NUMERIC_SEGMENT.sub("/:id", path).rstrip("/") or "/"


def redacted(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, "REDACTED" if k in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class Call:
    method: str
    endpoint: str
    response: requests.Response | None
    # Query parameters: whether the request pages decides which rate-limit families it counts against.
    params: dict = field(default_factory=dict)


class InstrumentedSession(requests.Session):
    """Records every request; `last_call` is what the wrapper reads after Mastodon.py returns or raises,
    `calls` every call since the wrapper last took them (one wrapper call may send several requests)."""

    last_call: Call | None = None

    def __init__(self) -> None:
        super().__init__()
        # Bounded: a caller that never takes its answers (a long-lived client) must not grow without end.
        self.calls: deque[Call] = deque(maxlen=MAX_KEPT_CALLS)

    def request(self, method, url, *args, **kwargs):
        method = method.upper()
        parts = urlsplit(url)
        endpoint = endpoint_template(parts.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if isinstance(kwargs.get("params"), dict):
            params.update(kwargs["params"])
        self.last_call = Call(method, endpoint, None, params)
        self.calls.append(self.last_call)
        attributes = {"http.request.method": method, "url.full": redacted(url), "server.address": parts.hostname or ""}
        if parts.port:
            attributes["server.port"] = parts.port
        with tracer.start_as_current_span(f"{method} {endpoint}", kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
            started = time.perf_counter()
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.RequestException as exc:
                MASTODON_REQUESTS.labels(endpoint, method, "error").inc()
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                MASTODON_DURATION.labels(endpoint, method).observe(time.perf_counter() - started)
            self.last_call.response = response
            status = response.status_code
            span.set_attribute("url.full", redacted(response.url))
            span.set_attribute("http.response.status_code", status)
            MASTODON_REQUESTS.labels(endpoint, method, str(status)).inc()
            if status == 429:
                MASTODON_RATE_LIMITED.labels(endpoint).inc()
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            return response
