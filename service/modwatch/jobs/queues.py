"""Queue names, their priority order, and the one way to get a queue."""

from __future__ import annotations

from modwatch.connection import get_redis
from modwatch.jobs.rq_integration import ModwatchQueue

MONITORING = "monitoring"
WEBHOOKS = "webhooks"
MODERATION = "moderation"

# Workers take queues in this order. Monitoring comes first: record_queue_stats is tiny and must
# never wait behind a backlog, or the numbers on-call relies on would lag exactly when they matter.
PRIORITY = (MONITORING, WEBHOOKS, MODERATION)


def get_queue(name: str) -> ModwatchQueue:
    if name not in PRIORITY:
        raise KeyError(f"unknown queue {name!r}; known: {', '.join(PRIORITY)}")
    return ModwatchQueue(name, connection=get_redis())


def all_queues() -> list[ModwatchQueue]:
    return [get_queue(name) for name in PRIORITY]
