"""The local trace store (LOCAL_TRACES): spans kept in Redis per trace, bounded, and the HTML waterfall.
The whole path under `modwatch run` (webhook -> worker -> GET /jobs/jobs/{id}/trace) is in tests/core/test_run.py."""

import redis
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from modwatch.api import trace_page
from modwatch.telemetry import trace_store


def provider_storing_locally(service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(trace_store.RedisSpanExporter()))
    return provider


def test_spans_of_two_processes_are_kept_per_trace_in_start_order(tracing_env):
    api, worker = provider_storing_locally("modwatch-api"), provider_storing_locally("modwatch-worker")
    with api.get_tracer("t").start_as_current_span("POST /webhooks/<x>", kind=SpanKind.SERVER) as request:
        with api.get_tracer("t").start_as_current_span("send webhooks", kind=SpanKind.PRODUCER) as send:
            send.set_attribute("messaging.destination.name", "webhooks")
            send.set_attribute("tags", ("a", "b"))
        with worker.get_tracer("t").start_as_current_span("process webhooks", kind=SpanKind.CONSUMER) as job:
            job.add_event("retry", {"attempt": 2})
            job.set_status(Status(StatusCode.ERROR, "boom"))
    trace_id = format(request.get_span_context().trace_id, "032x")
    connection = redis.Redis.from_url(tracing_env["REDIS_URL"])
    [kept, missing] = trace_store.load_traces(connection, [trace_id, "0" * 32])
    assert missing == {"trace_id": "0" * 32, "spans": []}
    assert [span["name"] for span in kept["spans"]] == ["POST /webhooks/<x>", "send webhooks", "process webhooks"]
    root, sent, processed = kept["spans"]
    assert root["parent_span_id"] is None and root["kind"] == "SERVER" and root["service"] == "modwatch-api"
    assert sent["parent_span_id"] == processed["parent_span_id"] == root["span_id"]
    assert sent["attributes"] == {"messaging.destination.name": "webhooks", "tags": ["a", "b"]}
    assert processed["service"] == "modwatch-worker" and processed["status"] == "ERROR"
    assert processed["status_message"] == "boom" and processed["events"][0]["attributes"] == {"attempt": 2}
    assert 0 < connection.ttl(trace_store.trace_key(trace_id)) <= trace_store.TRACE_TTL_SECONDS


def test_a_trace_keeps_only_its_newest_spans(tracing_env, monkeypatch):
    monkeypatch.setattr(trace_store, "MAX_SPANS_PER_TRACE", 3)
    tracer = provider_storing_locally("modwatch-worker").get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        for n in range(5):
            with tracer.start_as_current_span(f"child {n}"):
                pass
    trace_id = format(root.get_span_context().trace_id, "032x")
    [kept] = trace_store.load_traces(redis.Redis.from_url(tracing_env["REDIS_URL"]), [trace_id])
    assert [span["name"] for span in kept["spans"]] == ["root", "child 3", "child 4"]  # root ends last


def test_waterfall_nests_children_under_parents_and_escapes_names():
    def span(span_id, parent, name, start, end):
        return {"trace_id": "ab" * 16, "span_id": span_id, "parent_span_id": parent, "name": name, "kind": "INTERNAL",
                "service": "modwatch-worker", "start_ns": start, "end_ns": end, "status": "UNSET",
                "status_message": None, "attributes": {"k": "<v>"}, "events": [], "links": []}

    page = trace_page.render("job<1>", [{"trace_id": "ab" * 16, "spans": [
        span("1", None, "root", 0, 10_000_000), span("2", "1", "<child>", 2_000_000, 4_000_000),
        span("3", "2", "grandchild", 2_500_000, 3_000_000), span("4", "1", "second", 5_000_000, 10_000_000),
    ]}, {"trace_id": "cd" * 16, "spans": []}])
    assert "job&lt;1&gt;" in page and "&lt;child&gt;" in page and "<child>" not in page and "&lt;v&gt;" in page
    assert page.index("root") < page.index("&lt;child&gt;") < page.index("grandchild") < page.index("second")
    assert 'padding-left:42px">grandchild' in page  # depth 2
    assert "left:20.00%;width:20.00%" in page  # the child: 2-4 ms of a 10 ms trace
    assert "no spans kept" in page  # the second trace, expired or not exported yet
    assert "http" not in page  # nothing loaded from elsewhere
