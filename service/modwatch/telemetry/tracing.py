"""OpenTelemetry setup for each process kind.

Every process gets an SDK tracer provider, so trace ids exist for logs, job metadata and webhook
answers even without a collector. Spans leave the process only when an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), through a batch processor
with a short export timeout, so a slow or missing collector never holds up a request or a job.
The standard `OTEL_*` variables keep their meaning (sampler, service name, resource attributes,
headers, batch sizes); `OTEL_SDK_DISABLED=true` leaves the no-op provider in place.

A forking worker's work horse does not export: it ends with os._exit, so it hands its finished
spans, OTLP-encoded, to its worker (`hold_spans`, `take_held_spans`), which exports them with its
own (`export_handed_over`). See `SpanRelay`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace
# Imported here, never lazily: a worker forks while its export thread runs, and a horse forked while that
# thread held an import lock waited on it forever (seen: the first webhook of `modwatch run` never finished).
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from modwatch import __version__

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

# The OTLP exporter and protobuf classes are imported where used: only processes that export load them.

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
# The SDK's default of 10 s would let an unreachable collector hold a work horse's exit that long.
EXPORT_TIMEOUT_SECONDS = 3.0
# Probes and scrapes: frequent, uninteresting, and they would drown the traces that matter.
UNTRACED_PATHS = r"^https?://[^/]+/(metrics|livez|readyz)/?(\?.*)?$"


def service_name(process: str) -> str:
    """`modwatch-api`, `modwatch-worker`, `modwatch-scheduler`, ... (OTEL_SERVICE_NAME overrides)."""
    return f"modwatch-{process}"


def build_resource(process: str) -> Resource:
    # The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) is merged last, so it wins.
    return Resource.create({SERVICE_NAME: service_name(process), SERVICE_VERSION: __version__}).merge(
        OTELResourceDetector().detect()
    )


# How long a stopping process spends exporting what it still holds (Docker waits 10 s before it
# kills): with the collector down, each batch would take its whole export timeout, and a relay
# holding 2,048 spans would keep the process for a minute and a half.
SHUTDOWN_SECONDS = 5.0
DEFAULT_EXPORT_BATCH_SIZE = 64


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class SpanRelay(SpanProcessor):
    """Exports finished spans in batches from a background thread; in a work horse, holds them.

    Used instead of the SDK's BatchSpanProcessor, which starts a new export thread in every forked
    child: a forking worker would pay for that thread in each work horse (milliseconds per job).
    This thread starts with the first span a process exports, so a horse, which never exports,
    never has one. A horse ends with os._exit, so it holds its finished spans and hands them,
    OTLP-encoded, to its worker in the one report it sends anyway (`take`); the worker queues
    the encodings as they are (`export_encoded`) and decodes them in its export thread, so spans
    of many jobs leave in one request. The OTEL_BSP_* variables keep their meaning.
    """

    def __init__(self, exporter: SpanExporter, resource: Resource) -> None:
        self.exporter = exporter
        self.resource = resource
        self.delay = _env_int("OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000
        # 64 rather than the SDK's 512: encoding a batch holds the GIL, and request threads wait
        # it out. 512 spans (about 10 ms) made the API's p99 at 125 req/s 33-49 ms; 64, 13-23 ms.
        self.batch_size = _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_EXPORT_BATCH_SIZE)
        self.max_spans = _env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self.spans: deque[ReadableSpan] = deque(maxlen=self.max_spans)
        self.encoded: deque[bytes] = deque(maxlen=self.max_spans)
        self.held: list[ReadableSpan] | None = None
        self.deadline = math.inf  # monotonic time after which what is left is dropped (set by shutdown)
        self.pid: int | None = None  # the process whose export thread runs
        self.starting = threading.Lock()
        self.stopped = False

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        if self.held is not None:
            if len(self.held) < self.max_spans:
                self.held.append(span)
            return
        self._start()
        self.spans.append(span)
        if len(self.spans) >= self.batch_size:
            self.wake.set()

    def export_encoded(self, encoded: bytes) -> None:
        self._start()
        self.encoded.append(encoded)

    def take(self) -> bytes | None:
        """The spans held so far as a serialized ExportTraceServiceRequest (the SDK's OTLP encoder);
        None when there are none."""
        spans, self.held = self.held, []
        return encode_spans(spans).SerializeToString() if spans else None

    def _start(self) -> None:
        if self.pid == os.getpid() or self.stopped:
            return
        with self.starting:
            if self.pid == os.getpid():
                return
            # First export in this process: what a forked child inherited belongs to its parent.
            self.spans.clear()
            self.encoded.clear()
            self.lock = threading.Lock()
            self.wake = threading.Event()
            self.thread = threading.Thread(target=self._run, name="otel-export", daemon=True)
            self.thread.start()
            self.pid = os.getpid()  # last: other threads use the above once they see it

    def _run(self) -> None:
        while not self.stopped:
            self.wake.wait(self.delay)
            self.wake.clear()
            self._export()

    def _export(self, deadline: float = math.inf) -> None:
        with self.lock:
            spans = []
            while self.encoded:
                try:
                    spans.extend(decode_spans(self.encoded.popleft(), self.resource))
                except Exception:  # a horse's bad handover costs its spans, never the others
                    log.warning("handed_over_spans_lost", exc_info=True)
            while self.spans:
                spans.append(self.spans.popleft())
            for start in range(0, len(spans), self.batch_size):
                if time.monotonic() >= min(deadline, self.deadline):
                    log.warning("spans_dropped", spans=len(spans) - start, reason="export deadline passed")
                    return
                try:
                    self.exporter.export(spans[start:start + self.batch_size])
                except Exception:  # never end the export thread
                    log.warning("span_export_failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self.pid == os.getpid():
            self._export(time.monotonic() + timeout_millis / 1000)
        return True

    def shutdown(self) -> None:
        if self.pid == os.getpid() and not self.stopped:
            self.deadline = time.monotonic() + SHUTDOWN_SECONDS
            self.stopped = True
            self.wake.set()
            self.thread.join(SHUTDOWN_SECONDS)
            self._export()
        self.stopped = True
        self.exporter.shutdown()


class ModwatchTracerProvider(TracerProvider):
    """The SDK provider, with its exporting processor at hand (None when nothing is exported)."""

    relay: SpanRelay | None = None

    def _handle_fork(self) -> None:
        # The SDK re-runs its process-dependent resource detectors in every forked child: an entry
        # point scan and a thread pool, about 10 ms in each work horse. A horse's spans are
        # exported by its worker under the worker's resource (`SpanRelay`), so only the lock,
        # which another thread may have held at the fork, needs renewing.
        self._tracers_lock = threading.Lock()


def _relay() -> SpanRelay | None:
    return getattr(trace.get_tracer_provider(), "relay", None)


def hold_spans() -> None:
    """In a work horse: keep finished spans for `take_held_spans` instead of exporting them."""
    if relay := _relay():
        relay.held = []


def take_held_spans() -> bytes | None:
    """The spans held since `hold_spans`, OTLP-encoded, for the worker's `export_handed_over`."""
    relay = _relay()
    return relay.take() if relay is not None and relay.held is not None else None


def export_handed_over(encoded: bytes) -> None:
    """Export spans a work horse handed over (see SpanRelay)."""
    if relay := _relay():
        relay.export_encoded(encoded)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(key_values: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in key_values}


def _context(trace_id: bytes, span_id: bytes, flags: int, trace_state: str = "") -> SpanContext:
    return SpanContext(
        int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big"),
        is_remote=bool(flags & SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK),
        trace_flags=TraceFlags(TraceFlags.SAMPLED),  # only sampled spans are held
        trace_state=TraceState.from_header([trace_state]) if trace_state else None,
    )


def decode_spans(encoded: bytes, resource: Resource) -> list[ReadableSpan]:
    """The spans of an ExportTraceServiceRequest, as the SDK's ReadableSpans of `resource`."""
    request = ExportTraceServiceRequest.FromString(encoded)
    spans = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(
                scope_spans.scope.name, scope_spans.scope.version or None, scope_spans.schema_url or None,
                _attributes(scope_spans.scope.attributes),
            )
            for span in scope_spans.spans:
                own = _context(span.trace_id, span.span_id, 0, span.trace_state)
                spans.append(ReadableSpan(
                    name=span.name,
                    context=own,
                    parent=_context(span.trace_id, span.parent_span_id, span.flags) if span.parent_span_id else None,
                    resource=resource,
                    attributes=_attributes(span.attributes),
                    events=[Event(event.name, _attributes(event.attributes), event.time_unix_nano)
                            for event in span.events],
                    links=[Link(_context(link.trace_id, link.span_id, link.flags), _attributes(link.attributes))
                           for link in span.links],
                    kind=SpanKind(span.kind - 1),  # OTLP numbers kinds from 1 (INTERNAL), the SDK from 0
                    status=Status(StatusCode(span.status.code), span.status.message or None),
                    start_time=span.start_time_unix_nano,
                    end_time=span.end_time_unix_nano,
                    instrumentation_scope=scope,
                ))
    return spans


def export_configured() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES) and (
        os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none"
    )


def build_provider(process: str, local_store: bool = False) -> ModwatchTracerProvider:
    """The provider for one process; the sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
    Spans go to the OTLP endpoint when one is configured, else to Redis with `local_store` (LOCAL_TRACES)."""
    provider = ModwatchTracerProvider(resource=build_resource(process))
    exporter: SpanExporter | None = None
    if export_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Endpoint, headers, TLS, compression and retries come from the OTEL_EXPORTER_OTLP_* variables.
        timeout = None if any(os.environ.get(name) for name in TIMEOUT_VARIABLES) else EXPORT_TIMEOUT_SECONDS
        exporter = OTLPSpanExporter(timeout=timeout)
    elif local_store:
        from modwatch.telemetry.trace_store import RedisSpanExporter

        exporter = RedisSpanExporter()
    if exporter is not None:
        provider.relay = SpanRelay(exporter, provider.resource)
        provider.add_span_processor(provider.relay)
    return provider


def configure(process: str, local_store: bool = False) -> None:
    """Install the process's tracer provider as the global one (once per process)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    trace.set_tracer_provider(build_provider(process, local_store))


def instrument_app(app: FastAPI) -> None:
    """SERVER spans named by method and route template (`POST /webhooks/mastodon_events`)."""
    # The stable HTTP semantic conventions (http.request.method, http.response.status_code), as the
    # Mastodon client's spans use; the instrumentation defaults to the old names unless told. The
    # environment still decides when set (`http/dup` emits both during a dashboard migration).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"])
