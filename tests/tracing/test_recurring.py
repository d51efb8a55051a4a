"""Recurring rq-scheduler jobs: every run is a fresh trace, linked to where the job was registered."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from rq.job import Job

from modwatch.jobs.queues import MONITORING
from modwatch.jobs.scheduler import LeaderScheduler
from modwatch.jobs.worker import build_worker
from modwatch.settings import get_settings
from modwatch.telemetry.job_traces import job_trace_ids
from modwatch.telemetry.job_traces import CREATED_KEY, REGISTERED_CONTEXT_KEY

JOB_ID = "recurring-record_queue_stats"


def run_once(scheduler, connection) -> None:
    """One scheduler pass with the job due, then a worker drains the monitoring queue."""
    # The previous run ended an interval ago, as on schedule (a run right behind one would be coalesced).
    connection.hset(Job.key_for(JOB_ID), "ended_at", "2020-01-01T00:00:00.000000Z")
    connection.zadd(scheduler.scheduled_jobs_key, {JOB_ID: 0}, xx=True)
    scheduler.enqueue_job(Job.fetch(JOB_ID, connection=connection))
    build_worker(connection, [MONITORING], simple=True).work(burst=True)


def sends(spans) -> list:
    return [span for span in spans.get_finished_spans() if span.name == "send monitoring"]


def processes(spans) -> list:
    return [span for span in spans.get_finished_spans() if span.name == "process monitoring"]


def test_each_run_is_a_fresh_trace_linked_to_the_registration(redis_conn, spans):
    scheduler = LeaderScheduler(get_settings(), redis_conn)
    assert scheduler.acquire_lock()  # the leader registers the recurring jobs
    [register] = [span for span in spans.get_finished_spans() if span.name == "register monitoring"]
    assert register.kind is SpanKind.PRODUCER
    assert register.attributes["messaging.message.id"] == JOB_ID
    assert register.attributes["messaging.operation.type"] == "create"

    run_once(scheduler, redis_conn)
    run_once(scheduler, redis_conn)

    first, second = sends(spans)
    assert first.context.trace_id != second.context.trace_id
    assert register.context.trace_id not in (first.context.trace_id, second.context.trace_id)
    for send in (first, second):
        assert send.parent is None
        assert [link.context.span_id for link in send.links] == [register.context.span_id]
        assert send.attributes["messaging.message.id"] == JOB_ID
    runs = processes(spans)
    assert [run.parent.span_id for run in runs] == [first.context.span_id, second.context.span_id]
    assert [run.attributes["messaging.rq.attempt"] for run in runs] == [1, 1]
    assert job_trace_ids(Job.fetch(JOB_ID, connection=redis_conn)) == {
        "created": format(register.context.trace_id, "032x"),
        "executions": [format(run.context.trace_id, "032x") for run in runs],
    }


def test_without_a_registration_context_runs_are_still_fresh_traces(redis_conn, spans):
    scheduler = LeaderScheduler(get_settings(), redis_conn)
    assert scheduler.acquire_lock()
    registered = Job.fetch(JOB_ID, connection=redis_conn)  # as an older modwatch registered it: no context
    for key in (REGISTERED_CONTEXT_KEY, CREATED_KEY):
        registered.meta.pop(key, None)
    registered.save_meta()
    run_once(scheduler, redis_conn)
    run_once(scheduler, redis_conn)
    first, second = sends(spans)
    assert first.parent is None and second.parent is None
    assert first.context.trace_id != second.context.trace_id
    assert not first.links
    assert job_trace_ids(Job.fetch(JOB_ID, connection=redis_conn))["created"] == format(first.context.trace_id, "032x")


def test_lookup_of_a_recurring_job_leads_to_its_latest_run(redis_conn, spans):
    from modwatch.api.jobs import job_detail

    scheduler = LeaderScheduler(get_settings(), redis_conn)
    assert scheduler.acquire_lock()
    for _ in range(3):
        run_once(scheduler, redis_conn)
    runs = [format(run.context.trace_id, "032x") for run in processes(spans)]
    detail = job_detail(Job.fetch(JOB_ID, connection=redis_conn), get_settings())
    assert detail.trace_id == runs[-1]  # not the registration's trace
    assert [run.trace_id for run in detail.recent_runs or []] == runs[::-1]
    # Grafana Explore's JSON goes percent-encoded into the link.
    assert detail.trace_url and runs[-1] in detail.trace_url and not set('{}" ') & set(detail.trace_url)
