"""Queue names, their priority order, and the one way to get a queue."""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq.job import Job

from modwatch.connection import get_redis
from modwatch.telemetry.job_metrics import EnqueueMetricsMixin
from modwatch.telemetry.rq_tracing import TracingQueueMixin

MONITORING = "monitoring"
WEBHOOKS = "webhooks"
MODERATION = "moderation"

# Workers take queues in this order. Monitoring comes first: record_queue_stats is tiny and must
# never wait behind a backlog, or the numbers on-call relies on would lag exactly when they matter.
PRIORITY = (MONITORING, WEBHOOKS, MODERATION)


class OneTripQueue(Queue):
    """RQ's Queue, enqueueing a job in one Redis round trip instead of two.

    RQ's `enqueue_job` adds the queue to its set of queues in a transaction of its own, then saves
    and pushes the job in a second one. A job with nothing to wait for (no dependencies, no
    uniqueness check) gets both in one transaction here: half the round trips, and the queue is
    never registered without its job. A caller's own pipeline is used as RQ uses it.
    """

    def enqueue_job(self, job: Job, pipeline: Any = None, at_front: bool = False, unique: bool = False) -> Job:
        if pipeline is not None or unique or job._dependency_ids or not self._is_async:
            return super().enqueue_job(job, pipeline=pipeline, at_front=at_front, unique=unique)
        with self.connection.pipeline() as pipe:
            job = super().enqueue_job(job, pipeline=pipe, at_front=at_front)
            pipe.execute()
        return job


class ModwatchQueue(EnqueueMetricsMixin, TracingQueueMixin, OneTripQueue):
    """RQ's Queue with producer-side telemetry: every way a job enters a queue is traced and counted.

    The `send` span of a job enqueued in one trip ends when its commands are queued in the
    transaction, as with any caller's pipeline; a failed transaction fails the enqueue call itself.
    """


def get_queue(name: str) -> ModwatchQueue:
    if name not in PRIORITY:
        raise KeyError(f"unknown queue {name!r}; known: {', '.join(PRIORITY)}")
    return ModwatchQueue(name, connection=get_redis())


def all_queues() -> list[ModwatchQueue]:
    return [get_queue(name) for name in PRIORITY]
