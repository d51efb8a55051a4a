"""The work horse handover: spans a horse holds leave it OTLP-encoded by the SDK's encoder and come back, in
its worker, as the same spans; a process that exports uses the SDK's own OTLP/HTTP exporter."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState, set_span_in_context,
)

from modwatch.telemetry.tracing import SpanRelay, build_provider, decode_spans


def made_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "modwatch-test", "host.cores": 2},
                                                       schema_url="https://opentelemetry.io/schemas/1.26.0"))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.otlp", "1.2.3", schema_url="https://example.test/schema")
    other = provider.get_tracer("tests.other")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("vendor", "x1"), ("b", "2")]))
    with tracer.start_as_current_span("send webhooks", kind=SpanKind.PRODUCER, attributes={
        "messaging.system": "rq", "messaging.rq.retries_left": 0, "negative": -5, "big": 2**62, "ratio": 0.25,
        "flag": False, "on": True, "empty": "", "names": ("a", "ü", ""), "numbers": [1, -2, 3], "floats": [0.5],
        "unicode": "Ünïcødé ✓",
    }, links=[Link(remote, {"messaging.rq.link": "previous"}), Link(remote)]):
        with other.start_as_current_span("inner") as inner:
            inner.add_event("checkpoint", {"step": 2})
            inner.add_event("bare")
            inner.set_status(Status(StatusCode.ERROR, "it broke"))
    with tracer.start_as_current_span("process webhooks", context=set_span_in_context(NonRecordingSpan(remote)),
                                      kind=SpanKind.CONSUMER) as span:
        span.record_exception(ValueError("no luck"))
        span.set_status(Status(StatusCode.OK))
    tracer.start_span("unset status", kind=SpanKind.CLIENT).end()
    return exporter.get_finished_spans()


def handed_over(spans) -> bytes | None:
    """What a horse's relay hands its worker after holding `spans`."""
    relay = SpanRelay(InMemorySpanExporter(), spans[0].resource if spans else Resource.create())
    relay.held = list(spans)
    return relay.take()


def test_the_handover_is_the_sdks_export_request():
    spans = made_spans()
    sent = ExportTraceServiceRequest.FromString(handed_over(spans))
    assert sent == sdk_encode_spans(spans)
    assert sum(len(scope.spans) for scope in sent.resource_spans[0].scope_spans) == 4


def test_spans_round_trip_through_the_work_horse_handover():
    spans = made_spans()
    decoded = decode_spans(handed_over(spans), spans[0].resource)
    def shape(span):
        return (span.name, span.context.trace_id, span.context.span_id, span.parent.span_id if span.parent else None,
                span.kind, dict(span.attributes), [(event.name, dict(event.attributes)) for event in span.events],
                [(link.context.span_id, dict(link.attributes)) for link in span.links], span.status.status_code,
                span.status.description, span.start_time, span.end_time)

    assert [shape(span) for span in decoded] == [shape(span) for span in spans]


def test_nothing_held_is_nothing_handed_over():
    assert handed_over([]) is None


def test_an_exporting_process_uses_the_sdks_otlp_exporter_as_it_is(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    provider = build_provider("test")
    assert type(provider.relay.exporter) is OTLPSpanExporter
    provider.shutdown()
