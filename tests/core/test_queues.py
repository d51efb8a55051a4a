"""ModwatchQueue puts a job on its queue in one Redis transaction, and keeps RQ's semantics."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import REGISTRY
from rq.job import Job, JobStatus

from core import jobfuncs
from modwatch.connection import get_redis
from modwatch.jobs.queues import MODERATION, WEBHOOKS, get_queue
from modwatch.jobs.worker import build_worker


@pytest.fixture
def transactions(monkeypatch):
    """The command lists of every pipeline this process executes."""
    executed: list[list[str]] = []
    execute = redis.client.Pipeline.execute

    def counting(pipeline, *args, **kwargs):
        executed.append([str(command[0][0]) for command in pipeline.command_stack])
        return execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    return executed


def enqueued_count(queue: str) -> float:
    labels = {"queue": queue, "function": "add"}
    return REGISTRY.get_sample_value("modwatch_jobs_enqueued_total", labels) or 0.0


def test_enqueue_registers_the_queue_and_saves_the_job_in_one_transaction(core_env, transactions):
    job = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2)
    assert len(transactions) == 1, transactions
    assert transactions[0][0] == "SADD" and "RPUSH" in transactions[0]
    connection = get_redis()
    assert connection.sismember("rq:queues", "rq:queue:webhooks")
    assert connection.lrange("rq:queue:webhooks", 0, -1) == [job.id.encode()]
    assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.QUEUED


def test_a_failed_transaction_enqueues_and_counts_nothing(core_env, monkeypatch):
    def refuse(pipeline, *args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    before = enqueued_count(WEBHOOKS)
    monkeypatch.setattr(redis.client.Pipeline, "execute", refuse)
    with pytest.raises(redis.ConnectionError):
        get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2)
    monkeypatch.undo()
    connection = get_redis()
    assert not connection.exists("rq:queues") and not connection.exists("rq:queue:webhooks")
    assert enqueued_count(WEBHOOKS) == before


def test_a_dependent_job_waits_for_its_dependency_as_in_rq(core_env):
    queue = get_queue(MODERATION)
    first = queue.enqueue(jobfuncs.add, 1, 2)
    second = queue.enqueue(jobfuncs.add, 3, 4, depends_on=first)
    assert second.get_status() == JobStatus.DEFERRED
    build_worker(get_redis(), [MODERATION], simple=True).work(burst=True)
    assert first.get_status() == JobStatus.FINISHED and second.get_status() == JobStatus.FINISHED
    assert second.return_value() == 7


def test_a_callers_pipeline_is_executed_by_the_caller(core_env, transactions):
    queue = get_queue(WEBHOOKS)
    with get_redis().pipeline() as pipe:
        job = queue.enqueue(jobfuncs.add, 1, 2, pipeline=pipe)
        assert transactions == [] and not get_redis().exists(job.key)
        pipe.execute()
    assert get_redis().lrange("rq:queue:webhooks", 0, -1) == [job.id.encode()]
