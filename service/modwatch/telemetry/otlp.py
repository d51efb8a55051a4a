"""OTLP/protobuf encoding of finished spans, written straight into the wire format.

The SDK's encoder builds a protobuf object for every span, attribute and value before it
serializes them: about 100 us per span here, spent in the export thread under the same GIL as
the requests and enqueues that made the spans. Writing the bytes directly costs a fraction of
that. The output is an `ExportTraceServiceRequest` that parses to the same message as the SDK's
(`encode_spans`), grouped the same way: by resource, then by instrumentation scope, in order of
first appearance (tests/tracing/test_otlp.py compares the two).

Field numbers are those of opentelemetry-proto's trace.proto, common.proto and resource.proto.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind

# Wire types.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

# Span.flags: whether the parent's remoteness is known (always) and whether it is remote.
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200
# OTLP numbers span kinds from 1 (INTERNAL); the SDK's enum starts at 0.
_KIND = {kind: kind.value + 1 for kind in SpanKind}

_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack


def _varint(value: int) -> bytes:
    if value < 0:  # int64: two's complement over ten bytes
        value &= 0xFFFFFFFFFFFFFFFF
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.cache  # a handful of (field, wire type) pairs, asked for on every field written
def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _present(field: int, payload: bytes) -> bytes:
    """A length-delimited field written even when empty: an embedded message that is set."""
    return _tag(field, _LENGTH) + _varint(len(payload)) + payload


def _field(field: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, embedded message); empty ones are left out, as proto3 does."""
    return _present(field, payload) if payload else b""


def _string(field: int, text: str | None) -> bytes:
    return _field(field, text.encode()) if text else b""


def _uint(field: int, value: int) -> bytes:
    return _tag(field, _VARINT) + _varint(value) if value else b""


def _any_value(value: Any) -> bytes:
    """AnyValue; None is an empty one."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _tag(2, _VARINT) + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _present(1, value.encode())
    if isinstance(value, int):
        return _tag(3, _VARINT) + _varint(value)
    if isinstance(value, float):
        return _tag(4, _FIXED64) + _pack_double(value)
    if isinstance(value, bytes):
        return _present(7, value)
    if isinstance(value, Sequence):
        return _present(5, b"".join(_present(1, item) for item in map(_any_value, value)))
    if isinstance(value, Mapping):
        return _present(6, b"".join(_field(1, _key_value(str(key), item)) for key, item in value.items()))
    raise TypeError(f"cannot encode an attribute value of type {type(value).__name__}")


def _encode_key_value(key: str, value: Any) -> bytes:
    # KeyValue.value is a message field: present even when the AnyValue is empty.
    return _field(1, key.encode()) + _present(2, _any_value(value))


# Most attributes repeat from span to span (system, queue, operation, function): encoded once.
# Only scalars: a tuple (1,) equals (True,), and typed caching tells apart only the outer type.
_cached_key_value = functools.lru_cache(maxsize=2048, typed=True)(_encode_key_value)


def _key_value(key: str, value: Any) -> bytes:
    if isinstance(value, (str, bool, int, float)):
        return _cached_key_value(key, value)
    return _encode_key_value(key, value)


def _attributes(field: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join(_present(field, _key_value(key, value)) for key, value in attributes.items())


def _flags(tag: bytes, context: SpanContext | None) -> bytes:
    flags = _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if context is not None and context.is_remote else 0)
    return tag + _pack_fixed32(flags)


# Span fields (trace.proto), tag bytes written out once; ids carry their fixed lengths (16 and 8).
_TRACE_ID = _tag(1, _LENGTH) + b"\x10"
_SPAN_ID = _tag(2, _LENGTH) + b"\x08"
_PARENT_SPAN_ID = _tag(4, _LENGTH) + b"\x08"
_START = _tag(7, _FIXED64)
_END = _tag(8, _FIXED64)
_SPAN_FLAGS = _tag(16, _FIXED32)
_LINK_FLAGS = _tag(6, _FIXED32)
_EVENT_TIME = _tag(1, _FIXED64)


def _span(span: ReadableSpan) -> bytes:
    context = span.context
    parent = span.parent
    parts = [_TRACE_ID, context.trace_id.to_bytes(16, "big"), _SPAN_ID, context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_string(3, ",".join(f"{key}={value}" for key, value in context.trace_state.items())))
    if parent is not None:
        parts += (_PARENT_SPAN_ID, parent.span_id.to_bytes(8, "big"))
    parts += (_string(5, span.name), _uint(6, _KIND[span.kind]))
    if span.start_time:
        parts += (_START, _pack_fixed64(span.start_time))
    if span.end_time:
        parts += (_END, _pack_fixed64(span.end_time))
    parts.append(_attributes(9, span.attributes))
    if span.dropped_attributes:
        parts.append(_uint(10, span.dropped_attributes))
    if span.events:
        for event in span.events:
            body = (_EVENT_TIME + _pack_fixed64(event.timestamp) if event.timestamp else b"") + _string(2, event.name)
            parts.append(_field(11, body + _attributes(3, event.attributes) + _uint(4, event.dropped_attributes)))
        parts.append(_uint(12, span.dropped_events))
    if span.links:
        for link in span.links:
            body = (_TRACE_ID + link.context.trace_id.to_bytes(16, "big")
                    + _SPAN_ID + link.context.span_id.to_bytes(8, "big"))
            parts.append(_field(13, body + _attributes(4, link.attributes) + _uint(5, link.dropped_attributes)
                                + _flags(_LINK_FLAGS, link.context)))
        parts.append(_uint(14, span.dropped_links))
    status = span.status
    if status is not None:
        # Status is a message field: present even when it says UNSET with no message.
        parts.append(_present(15, _string(2, status.description) + _uint(3, status.status_code.value)))
    parts.append(_flags(_SPAN_FLAGS, parent))
    return b"".join(parts)


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    return _string(1, scope.name) + _string(2, scope.version) + _attributes(3, scope.attributes)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """A serialized ExportTraceServiceRequest holding `spans`."""
    # Resources and scopes are a handful of long-lived objects: group and encode them by identity.
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        scopes = groups.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_field(2, _span(span)))
    resource_spans = []
    for resource, scopes in groups.values():
        # Resource and scope are message fields the SDK always sets, empty or not.
        scope_spans = b"".join(
            _field(2, _present(1, _scope(scope)) + b"".join(encoded_spans)
                   + _string(3, scope.schema_url if scope is not None else None))
            for scope, encoded_spans in scopes.values()
        )
        resource_spans.append(_field(1, _present(1, _attributes(1, resource.attributes)) + scope_spans
                                     + _string(3, resource.schema_url)))
    return b"".join(resource_spans)


def build_exporter(timeout: float | None) -> Any:
    """The SDK's OTLP/HTTP exporter (endpoint, headers, TLS, compression, retries from OTEL_*),
    sending what `encode_spans` writes."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    class WireOTLPSpanExporter(OTLPSpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if self._shutdown:
                return SpanExportResult.FAILURE
            # The SDK's export with our encoder: `_client` is the transport it posts through, with
            # its retries and backoff (tests/tracing cover the round trip). Left out with the
            # SDK's version: its opt-in self-metrics and its refusal of requests over 64 MiB
            # (a batch here is at most OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans).
            sent = self._client.export(encode_spans(spans))
            return SpanExportResult.SUCCESS if sent.success else SpanExportResult.FAILURE

    return WireOTLPSpanExporter(timeout=timeout)
