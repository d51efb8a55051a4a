"""A forking worker's attempt spans: started and ended in the worker, shaped by what the horse reports."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode

from modwatch.jobs.queues import WEBHOOKS, get_queue
from modwatch.jobs.worker import build_worker
from modwatch.telemetry.job_traces import job_trace_ids
from tracing import jobfuncs


def attempts(spans) -> dict[str, object]:
    return {span.attributes["messaging.message.id"]: span for span in spans.get_finished_spans()
            if span.name == f"process {WEBHOOKS}"}


def test_each_attempt_span_carries_what_its_horse_did(redis_conn, spans):
    queue = get_queue(WEBHOOKS)
    succeeded = queue.enqueue(jobfuncs.annotate_current_span)
    failed = queue.enqueue(jobfuncs.fail)
    died = queue.enqueue(jobfuncs.die_abruptly)

    build_worker(redis_conn, [WEBHOOKS]).work(burst=True, with_scheduler=False)

    found = attempts(spans)
    assert set(found) == {succeeded.id, failed.id, died.id}
    assert all(span.kind is SpanKind.CONSUMER for span in found.values())

    ok = found[succeeded.id]
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["modwatch.test.note"] == "set in the job"
    assert ok.attributes["messaging.rq.attempt"] == 1
    assert job_trace_ids(succeeded.fetch(succeeded.id, connection=redis_conn))["executions"] == [
        format(ok.context.trace_id, "032x")]

    error = found[failed.id]
    assert error.status.status_code is StatusCode.ERROR
    assert error.attributes["error.type"] == "tracing.jobfuncs.ExpectedFailure"
    assert [event.name for event in error.events] == ["exception"]
    assert error.events[0].attributes["exception.message"] == "no luck"

    # Killed from outside: no report came, so the span ends with the failure RQ recorded.
    gone = found[died.id]
    assert gone.status.status_code is StatusCode.ERROR
    assert gone.attributes["error.type"] == "WorkHorseTerminated"
    assert "Work-horse terminated unexpectedly" in gone.status.description
    assert gone.end_time > gone.start_time
