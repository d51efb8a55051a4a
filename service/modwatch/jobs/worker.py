"""The worker: RQ's forking Worker (or SimpleWorker) on modwatch's queues, in priority order.

The worker classes themselves are in `modwatch.jobs.rq_integration`.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Sequence

import redis
import structlog
from prometheus_client import start_http_server
from rq import Worker
from rq.worker import BaseWorker

from modwatch.jobs.queues import PRIORITY, get_queue
from modwatch.jobs.rq_integration import ModwatchQueue, ModwatchSimpleWorker, ModwatchWorker
from modwatch.settings import Settings
from modwatch.telemetry.metrics import ForkSafeRegistry

log = structlog.get_logger(__name__)
RESULT_KEPT_NOTICE = "result will never expire"


class _KeptResultIsNotNews(logging.Filter):
    """RQ writes an info line on every run of a job whose result never expires: recurring jobs keep theirs
    on purpose (jobs/scheduler.py), so that line would be one per run, every interval, saying nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return RESULT_KEPT_NOTICE not in record.getMessage()


logging.getLogger("rq.worker").addFilter(_KeptResultIsNotNews())

# A worker heartbeats at least every job-monitoring interval; older than this, it is not healthy.
HEALTHY_HEARTBEAT_SECONDS = 60


def build_worker(connection: redis.Redis, queue_names: Sequence[str] = (), simple: bool = False) -> BaseWorker:
    names = list(queue_names) or list(PRIORITY)
    worker_class = ModwatchSimpleWorker if simple else ModwatchWorker
    return worker_class([get_queue(name) for name in names], connection=connection, queue_class=ModwatchQueue)


def preload_rules(settings: Settings) -> None:
    """Load and validate the rules file once, before any job: a forked job inherits the rule set and
    only reloads a file changed since (validating the default rules' patterns takes 0.4-0.9 s, which
    every job would otherwise pay). A bad file is reported by the first job, as before."""
    from modwatch.moderation.analysis import current_rules
    from modwatch.moderation.engine import RulesError

    try:
        current_rules(settings)
    except RulesError as exc:
        log.error("rules_preload_failed", error=str(exc))


# Each component's own /metrics port, so a worker and the scheduler on one host never collide; a second
# worker (or scheduler) on the host finds its default taken and takes the first free spare port.
DEFAULT_METRICS_PORTS = {"worker": 9100, "scheduler": 9101, "stream": 9102}
SPARE_METRICS_PORTS = range(9110, 9200)  # clear of the defaults, with room for more components


def serve_metrics(port: int | None, component: str = "worker", host: str = "127.0.0.1") -> int | None:
    """Serve /metrics and return its port. `port` is METRICS_PORT or --metrics-port: None picks the component's
    default (or a spare one when another process has it), 0 disables, and a chosen port that is taken ends the
    process with one line naming the setting."""
    if port == 0:
        return None
    if port is not None:
        candidates: Sequence[int] = (port,)
    else:
        candidates = (DEFAULT_METRICS_PORTS[component], *SPARE_METRICS_PORTS)
    for candidate in candidates:
        try:
            # Text or OpenMetrics by the Accept header; read under the lock the worker forks with.
            start_http_server(candidate, addr=host, registry=ForkSafeRegistry())
        except OSError as exc:
            if port is None and exc.errno == errno.EADDRINUSE:
                continue
            raise SystemExit(f"modwatch {component}: cannot serve metrics on port {candidate} ({exc.strerror}); "
                             "choose another with METRICS_PORT or --metrics-port (0 disables metrics)") from None
        if candidate != candidates[0]:
            log.warning("metrics_default_port_taken", port=candidate, default_port=candidates[0],
                        hint="set METRICS_PORT to choose the port")
        log.info("metrics_listening", host=host, port=candidate)
        return candidate
    raise SystemExit(f"modwatch {component}: ports {candidates[0]} and {SPARE_METRICS_PORTS.start}-"
                     f"{SPARE_METRICS_PORTS.stop - 1} are all taken; choose one with METRICS_PORT or --metrics-port")


def run_worker(settings: Settings, connection: redis.Redis, queue_names: Sequence[str], burst: bool, simple: bool) -> bool:
    worker = build_worker(connection, queue_names, simple)
    preload_rules(settings)
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
