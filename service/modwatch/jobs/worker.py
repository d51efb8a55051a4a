"""The worker: RQ's forking Worker (or SimpleWorker) on modwatch's queues, in priority order.

The worker classes themselves are in `modwatch.jobs.rq_integration`.
"""

from __future__ import annotations

import socket
import time
from typing import Sequence

import redis
import structlog
from prometheus_client import start_http_server
from rq import Worker

from modwatch.jobs.queues import PRIORITY, get_queue
from modwatch.jobs.rq_integration import ModwatchQueue, ModwatchSimpleWorker, ModwatchWorker
from modwatch.settings import Settings
from modwatch.telemetry.metrics import ForkSafeRegistry

log = structlog.get_logger(__name__)

# A worker heartbeats at least every job-monitoring interval; older than this, it is not healthy.
HEALTHY_HEARTBEAT_SECONDS = 60


def build_worker(connection: redis.Redis, queue_names: Sequence[str] = (), simple: bool = False) -> Worker:
    names = list(queue_names) or list(PRIORITY)
    worker_class = ModwatchSimpleWorker if simple else ModwatchWorker
    return worker_class([get_queue(name) for name in names], connection=connection, queue_class=ModwatchQueue)


def serve_metrics(port: int) -> None:
    if port:
        # Text or OpenMetrics by the Accept header; read under the lock the worker forks with.
        start_http_server(port, registry=ForkSafeRegistry())
        log.info("metrics_listening", port=port)


def run_worker(settings: Settings, connection: redis.Redis, queue_names: Sequence[str], burst: bool, simple: bool) -> bool:
    worker = build_worker(connection, queue_names, simple)
    # with_scheduler: RQ's own scheduler moves retries with a backoff interval back onto queues.
    return worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)


def healthy_worker_on_host(connection: redis.Redis, hostname: str | None = None) -> bool:
    hostname = hostname or socket.gethostname()
    now = time.time()
    for worker in Worker.all(connection=connection):
        if worker.hostname == hostname and worker.last_heartbeat is not None:
            if now - worker.last_heartbeat.timestamp() < HEALTHY_HEARTBEAT_SECONDS:
                return True
    return False
