"""SpanRelay's batches: small enough that encoding one never holds the interpreter lock for long,
and never more of them at shutdown than its deadline allows."""

from __future__ import annotations

import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modwatch.telemetry import tracing
from modwatch.telemetry.tracing import DEFAULT_EXPORT_BATCH_SIZE, SpanRelay


class BatchSizes(SpanExporter):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def export(self, spans) -> SpanExportResult:
        self.sizes.append(len(spans))
        return SpanExportResult.SUCCESS


def relay_of(monkeypatch, **env: str) -> tuple[SpanRelay, BatchSizes, TracerProvider]:
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = BatchSizes()
    relay = SpanRelay(exporter, Resource.create({}))
    provider = TracerProvider()
    provider.add_span_processor(relay)
    return relay, exporter, provider


def test_spans_leave_in_batches_of_64_by_default(monkeypatch):
    relay, exporter, provider = relay_of(monkeypatch)
    tracer = provider.get_tracer("tests.relay")
    for index in range(150):
        tracer.start_span(f"span {index}").end()
    relay.shutdown()
    assert DEFAULT_EXPORT_BATCH_SIZE == 64
    assert sum(exporter.sizes) == 150 and max(exporter.sizes) <= 64


def test_the_batch_size_variable_keeps_its_meaning(monkeypatch):
    relay, exporter, provider = relay_of(monkeypatch, OTEL_BSP_MAX_EXPORT_BATCH_SIZE="100")
    tracer = provider.get_tracer("tests.relay")
    for index in range(150):
        tracer.start_span(f"span {index}").end()
    relay.shutdown()
    assert sum(exporter.sizes) == 150 and max(exporter.sizes) == 100


class Unreachable(SpanExporter):
    """A collector that is down: every export takes its timeout, then fails."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.attempts = seconds, 0

    def export(self, spans) -> SpanExportResult:
        self.attempts += 1
        time.sleep(self.seconds)
        return SpanExportResult.FAILURE


def test_shutdown_with_the_collector_down_ends_within_its_deadline(monkeypatch):
    # 30 batches at 0.1 s each would keep the process 3 s; the deadline drops what is left.
    monkeypatch.setattr(tracing, "SHUTDOWN_SECONDS", 0.5)
    exporter = Unreachable(0.1)
    relay = SpanRelay(exporter, Resource.create({}))
    provider = TracerProvider()
    provider.add_span_processor(relay)
    tracer = provider.get_tracer("tests.relay")
    for index in range(30 * DEFAULT_EXPORT_BATCH_SIZE):
        tracer.start_span(f"span {index}").end()
    started = time.monotonic()
    relay.shutdown()
    assert time.monotonic() - started < 2.0
    assert 1 <= exporter.attempts < 30
