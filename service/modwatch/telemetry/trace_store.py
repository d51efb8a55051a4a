"""Recent traces kept in Redis, for a modwatch with no trace backend (`LOCAL_TRACES`, which `modwatch run`
turns on when no OTLP endpoint is configured), so `GET /jobs/jobs/{id}/trace` can show a job's spans.

Each process exports its finished spans here through the usual `SpanRelay` (a work horse's spans through
its worker), one Redis list per trace, each span a JSON object. A trace is kept `TRACE_TTL_SECONDS` after
its latest span and at most `MAX_SPANS_PER_TRACE` spans (the newest): enough to look at what just
happened, bounded whatever runs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import orjson
import redis
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from modwatch.redis_keys import TRACE_KEY

log = structlog.get_logger(__name__)

TRACE_TTL_SECONDS = 3600
MAX_SPANS_PER_TRACE = 1000


def trace_key(trace_id: str) -> str:
    return TRACE_KEY.format(trace_id=trace_id)


def _plain(value: Any) -> Any:
    # Span attribute values are scalars or tuples of scalars.
    return list(value) if isinstance(value, tuple) else value


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A span as the trace view shows it: ids in hex, times in nanoseconds since the epoch."""
    parent = span.parent
    return {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": {key: _plain(value) for key, value in (span.attributes or {}).items()},
        "events": [
            {"name": event.name, "time_ns": event.timestamp,
             "attributes": {key: _plain(value) for key, value in (event.attributes or {}).items()}}
            for event in span.events
        ],
        "links": [{"trace_id": format(link.context.trace_id, "032x"), "span_id": format(link.context.span_id, "016x")}
                  for link in span.links],
    }


class RedisSpanExporter(SpanExporter):
    """Appends each span to its trace's list; the process's Redis client is looked up at each export, so a
    forked child never uses its parent's sockets."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from modwatch.connection import get_redis

        by_trace: dict[str, list[bytes]] = defaultdict(list)
        for span in spans:
            by_trace[format(span.context.trace_id, "032x")].append(orjson.dumps(span_record(span)))
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                for trace_id, records in by_trace.items():
                    key = trace_key(trace_id)
                    pipe.rpush(key, *records)
                    pipe.ltrim(key, -MAX_SPANS_PER_TRACE, -1)
                    pipe.expire(key, TRACE_TTL_SECONDS)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("local_trace_store_failed", error=str(exc), spans=len(spans))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def load_traces(connection: redis.Redis, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each trace with its kept spans in start order (an empty list: expired, or not exported yet)."""
    with connection.pipeline(transaction=False) as pipe:
        for trace_id in trace_ids:
            pipe.lrange(trace_key(trace_id), 0, -1)
        stored = pipe.execute()
    return [
        {"trace_id": trace_id, "spans": sorted((orjson.loads(raw) for raw in raw_spans), key=lambda s: s["start_ns"])}
        for trace_id, raw_spans in zip(trace_ids, stored)
    ]
