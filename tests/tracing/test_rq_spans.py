"""The span rules of our RQ instrumentation, with spans in memory and jobs run by SimpleWorker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, StatusCode
from rq import Retry
from rq.job import Job

from modwatch.jobs.queues import MONITORING, WEBHOOKS, get_queue
from modwatch.jobs.worker import build_worker
from modwatch.telemetry.job_traces import CONTEXT_KEY, job_trace_ids
from tracing import jobfuncs

tracer = trace.get_tracer("tests.tracing")


def hex_trace(span) -> str:
    return format(span.context.trace_id, "032x")


def named(spans, name: str) -> list:
    return [span for span in spans.get_finished_spans() if span.name == name]


def only(spans, name: str):
    found = named(spans, name)
    assert len(found) == 1, [span.name for span in spans.get_finished_spans()]
    return found[0]


def work(connection, *queues: str, with_scheduler: bool = False) -> None:
    build_worker(connection, queues, simple=True).work(burst=True, with_scheduler=with_scheduler)


def test_enqueue_in_a_request_is_a_producer_span_under_it(redis_conn, spans):
    with tracer.start_as_current_span("POST /somewhere", kind=SpanKind.SERVER) as request:
        job = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2, retry=Retry(max=2))
    send = only(spans, "send webhooks")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent.span_id == request.get_span_context().span_id
    assert dict(send.attributes) == {
        "messaging.system": "rq",
        "messaging.destination.name": WEBHOOKS,
        "messaging.message.id": job.id,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.rq.operation": "enqueue",
        "messaging.rq.function": "tracing.jobfuncs.add",
        "messaging.rq.retries_left": 2,
    }
    stored = Job.fetch(job.id, connection=redis_conn)
    assert stored.meta[CONTEXT_KEY]["traceparent"].split("-")[2] == format(send.context.span_id, "016x")
    assert job_trace_ids(stored) == {"created": hex_trace(request), "executions": []}


def test_enqueue_outside_any_span_starts_a_trace(redis_conn, spans):
    job = get_queue(MONITORING).enqueue(jobfuncs.add, 1, 2)
    send = only(spans, "send monitoring")
    assert send.parent is None
    assert job_trace_ids(Job.fetch(job.id, connection=redis_conn))["created"] == hex_trace(send)


def test_simple_worker_continues_the_trace_and_the_job_nests_under_process(redis_conn, spans):
    job = get_queue(WEBHOOKS).enqueue(jobfuncs.traced_work)
    work(redis_conn, WEBHOOKS)
    send, process, inner = only(spans, "send webhooks"), only(spans, "process webhooks"), only(spans, "inner work")
    assert process.kind is SpanKind.CONSUMER
    assert process.parent.span_id == send.context.span_id
    assert inner.parent.span_id == process.context.span_id
    assert hex_trace(process) == hex_trace(send)
    assert process.status.status_code is StatusCode.UNSET
    attributes = dict(process.attributes)
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.operation.name"] == "process"
    assert attributes["messaging.rq.operation"] == "perform"
    assert attributes["messaging.message.id"] == job.id
    assert attributes["messaging.destination.name"] == WEBHOOKS
    assert attributes["messaging.rq.attempt"] == 1
    assert attributes["messaging.rq.worker.name"]
    assert attributes["messaging.rq.wait_seconds"] >= 0
    job.refresh()
    assert job.get_status() == "finished"
    assert job_trace_ids(job) == {"created": hex_trace(send), "executions": [hex_trace(process)]}
    # What every log line inside the job carries.
    result = job.return_value()
    assert result["trace_id"] == hex_trace(process)
    assert result["job_id"] == job.id and result["queue"] == WEBHOOKS


def test_failure_sets_error_status_type_and_exception(redis_conn, spans):
    get_queue(WEBHOOKS).enqueue(jobfuncs.fail)
    work(redis_conn, WEBHOOKS)
    process = only(spans, "process webhooks")
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes["error.type"] == "tracing.jobfuncs.ExpectedFailure"
    [event] = [event for event in process.events if event.name == "exception"]
    assert event.attributes["exception.message"] == "no luck"


def test_each_retry_is_its_own_process_span_in_the_same_trace(redis_conn, spans):
    job = get_queue(WEBHOOKS).enqueue(jobfuncs.fail, retry=Retry(max=2))
    work(redis_conn, WEBHOOKS)
    processes = named(spans, "process webhooks")
    sends = named(spans, "send webhooks")
    assert len(processes) == 3 and len(sends) == 3
    assert len({span.context.trace_id for span in processes + sends}) == 1
    assert [span.attributes["messaging.rq.attempt"] for span in processes] == [1, 2, 3]
    assert [span.attributes["messaging.rq.retries_left"] for span in sends] == [2, 1, 0]
    # Each retry's send span is a child of the attempt that failed.
    for failed, retry_send in zip(processes, sends[1:]):
        assert retry_send.parent.span_id == failed.context.span_id
    for retry_send, attempt in zip(sends, processes):
        assert attempt.parent.span_id == retry_send.context.span_id
    job.refresh()
    assert job_trace_ids(job)["executions"] == [hex_trace(processes[0])] * 3


def test_retry_with_backoff_is_scheduled_then_moved_by_the_scheduler(redis_conn, spans):
    queue = get_queue(WEBHOOKS)
    job = queue.enqueue(jobfuncs.fail, retry=Retry(max=1, interval=600))
    work(redis_conn, WEBHOOKS)
    failed = only(spans, "process webhooks")
    [retry] = [span for span in named(spans, "send webhooks") if span.attributes["messaging.rq.operation"] == "schedule"]
    assert retry.parent.span_id == failed.context.span_id
    due = datetime.fromisoformat(retry.attributes["messaging.rq.scheduled_for"])
    assert timedelta(seconds=590) < due - datetime.now(timezone.utc) <= timedelta(seconds=600)
    assert Job.fetch(job.id, connection=redis_conn).get_status() == "scheduled"
    spans.clear()
    # Make the retry due, then let a worker's scheduler (RQ's own) move it.
    redis_conn.zadd(queue.scheduled_job_registry.key, {job.id: 0}, xx=True)
    work(redis_conn, WEBHOOKS, with_scheduler=True)
    moved, attempt = only(spans, "send webhooks"), only(spans, "process webhooks")
    assert moved.attributes["messaging.rq.operation"] == "enqueue"
    assert moved.parent.span_id == retry.context.span_id
    assert attempt.parent.span_id == moved.context.span_id
    assert attempt.context.trace_id == failed.context.trace_id
    assert attempt.attributes["messaging.rq.attempt"] == 2


def test_enqueue_in_is_a_send_span_and_the_move_continues_it(redis_conn, spans):
    queue = get_queue(MONITORING)
    with tracer.start_as_current_span("request") as request:
        job = queue.enqueue_in(timedelta(minutes=5), jobfuncs.add, 2, 3)
    scheduled = only(spans, "send monitoring")
    assert scheduled.attributes["messaging.rq.operation"] == "schedule"
    assert scheduled.parent.span_id == request.get_span_context().span_id
    redis_conn.zadd(queue.scheduled_job_registry.key, {job.id: 0}, xx=True)
    work(redis_conn, MONITORING, with_scheduler=True)
    moved = [span for span in named(spans, "send monitoring") if span.attributes["messaging.rq.operation"] == "enqueue"]
    assert len(moved) == 1 and moved[0].parent.span_id == scheduled.context.span_id
    assert only(spans, "process monitoring").context.trace_id == request.get_span_context().trace_id


def test_dependents_are_sent_from_the_job_they_waited_for(redis_conn, spans):
    queue = get_queue(WEBHOOKS)
    with tracer.start_as_current_span("request") as request:
        first = queue.enqueue(jobfuncs.add, 1, 1)
        second = queue.enqueue(jobfuncs.add, 2, 2, depends_on=first)
    assert second.get_status() == "deferred"
    work(redis_conn, WEBHOOKS)
    sends = {span.attributes["messaging.message.id"]: span for span in named(spans, "send webhooks")}
    processes = {span.attributes["messaging.message.id"]: span for span in named(spans, "process webhooks")}
    assert set(sends) == set(processes) == {first.id, second.id}
    assert sends[second.id].parent.span_id == processes[first.id].context.span_id
    assert processes[second.id].parent.span_id == sends[second.id].context.span_id
    assert {span.context.trace_id for span in processes.values()} == {request.get_span_context().trace_id}


def test_enqueue_many_sends_each_job(redis_conn, spans):
    queue = get_queue(WEBHOOKS)
    jobs = queue.enqueue_many([queue.prepare_data(jobfuncs.add, (n, n)) for n in range(3)])
    assert sorted(span.attributes["messaging.message.id"] for span in named(spans, "send webhooks")) == sorted(
        job.id for job in jobs
    )


def test_requeue_from_another_trace_links_back(redis_conn, spans):
    queue = get_queue(WEBHOOKS)
    job = queue.enqueue(jobfuncs.fail)
    work(redis_conn, WEBHOOKS)
    original = only(spans, "send webhooks")
    spans.clear()
    with tracer.start_as_current_span("POST /jobs/jobs/{job_id}/requeue"):
        queue.enqueue_job(Job.fetch(job.id, connection=redis_conn))
    requeued = only(spans, "send webhooks")
    assert requeued.context.trace_id != original.context.trace_id
    assert [link.context.span_id for link in requeued.links] == [original.context.span_id]
    # The job keeps the trace it was created in.
    assert job_trace_ids(Job.fetch(job.id, connection=redis_conn))["created"] == hex_trace(original)


def test_baggage_travels_with_the_job(redis_conn, spans):
    token = context.attach(baggage.set_baggage("tenant", "example"))
    try:
        with tracer.start_as_current_span("request"):
            get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 1)
    finally:
        context.detach(token)
    job = Job.fetch(get_queue(WEBHOOKS).job_ids[0], connection=redis_conn)
    assert job.meta[CONTEXT_KEY]["baggage"] == "tenant=example"


def test_a_request_left_out_by_sampling_leaves_its_job_out_too(redis_conn, spans):
    # A parent-based sampler keeps a trace whole: the job carries the request's decision.
    unsampled = trace.NonRecordingSpan(trace.SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT)))
    with trace.use_span(unsampled):
        left_out = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2)
    with tracer.start_as_current_span("POST /kept", kind=SpanKind.SERVER):
        kept = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 2, 3)
    work(redis_conn, WEBHOOKS)
    processed = {span.attributes["messaging.message.id"] for span in named(spans, "process webhooks")}
    sent = {span.attributes["messaging.message.id"] for span in named(spans, "send webhooks")}
    assert processed == sent == {kept.id}
    # Its ids still exist for logs and job metadata; the trace is only not exported.
    assert job_trace_ids(Job.fetch(left_out.id, connection=redis_conn))["executions"] == [format(0x1234, "032x")]
