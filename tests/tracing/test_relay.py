"""SpanRelay's batches: small enough that encoding one never holds the interpreter lock for long."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

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
