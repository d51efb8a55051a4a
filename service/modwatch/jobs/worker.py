"""The worker: RQ's forking Worker (or SimpleWorker) on modwatch's queues, in priority order."""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from typing import Any, Sequence

import redis
import structlog
from prometheus_client import start_http_server
from rq import SimpleWorker, Worker

from modwatch.heap import freeze_heap
from modwatch.jobs.queues import PRIORITY, ModwatchQueue, get_queue
from modwatch.settings import Settings
from modwatch.telemetry.job_metrics import JobMetricsWorkerMixin
from modwatch.telemetry.metrics import ForkSafeRegistry
from modwatch.telemetry.rq_tracing import TracingWorkerMixin

log = structlog.get_logger(__name__)

# A worker heartbeats at least every job-monitoring interval; older than this, it is not healthy.
HEALTHY_HEARTBEAT_SECONDS = 60


class HorsePipeMixin:
    """A work horse's last word, its report, goes to its worker through a pipe, and says it is done.

    The report (`job_metrics.Report`: outcome, metric changes, spans) travels over a pipe made
    for each horse instead of through Redis: no round trip in the horse, none in the worker. It is
    the last thing a horse writes before RQ's os._exit(0), so it also tells the worker the horse is
    done: the kernel tears a process down at exit (unmapping its copy of the worker's memory)
    before waitpid returns, milliseconds per job; the worker takes a whole report as exit status
    0, goes on with the next job while the horse is torn down on the other core, and reaps it
    later. A horse that dies any other way (crash, kill, timeout) closes the pipe without a whole
    report, and the worker waits for its real exit status as RQ does.
    """

    _pipe: int | None = None  # in the worker: the read end; in a horse: the write end
    _received: bytearray  # what the worker has read of the report so far
    _exiting: tuple[int, ...] = ()  # horses done but perhaps not yet reaped
    horse_message: bytes | None = None  # the report the last horse sent, as sent

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        self.reap_exited_horses()
        self.horse_message, self._received = None, bytearray()
        read_end, write_end = os.pipe()
        self._pipe = write_end
        try:
            super().fork_work_horse(job, queue)  # type: ignore[misc]  # a horse never comes back
        finally:
            os.close(write_end)
            self._pipe = read_end

    def send_to_worker(self, message: bytes) -> None:
        """In a horse, last: send `message` (length first, so a cut-off one is recognised) and close."""
        framed = memoryview(len(message).to_bytes(8, "big") + message)
        while framed:  # a pipe takes 64 KiB at a time; the worker reads as we write
            framed = framed[os.write(self._pipe, framed):]
        os.close(self._pipe)

    def wait_for_horse(self) -> tuple[int | None, int | None, Any]:
        if self._pipe is not None:
            # Interrupted by RQ's monitoring alarm as its wait4 is; what was read so far is kept.
            while chunk := os.read(self._pipe, 65536):
                self._received += chunk
            os.close(self._pipe)
            self._pipe = None
            size = int.from_bytes(self._received[:8], "big")
            if len(self._received) >= 8 and len(self._received) == 8 + size:
                self.horse_message = bytes(self._received[8:])
                self._exiting = (*self._exiting, self.horse_pid)  # type: ignore[attr-defined]
                return self.horse_pid, os.EX_OK, None  # type: ignore[attr-defined]
        return super().wait_for_horse()  # type: ignore[misc]

    def reap_exited_horses(self, block: bool = False) -> None:
        still_exiting = []
        for pid in self._exiting:
            try:
                reaped, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                continue
            if not reaped:
                still_exiting.append(pid)
        self._exiting = tuple(still_exiting)

    def teardown(self) -> None:
        self.reap_exited_horses(block=True)
        super().teardown()  # type: ignore[misc]


class ModwatchWorker(HorsePipeMixin, TracingWorkerMixin, JobMetricsWorkerMixin, Worker):
    """RQ's forking Worker with modwatch's telemetry; it imports what its jobs run, once.

    A job's function is imported here, in the worker, before the fork: each horse inherits it
    instead of importing it again (the moderation jobs bring SQLAlchemy, Mastodon.py and the rules
    engine, seconds per job on a small machine). It is imported when the first such job comes,
    not at start, so a worker holds only what its jobs use: fork copies the page tables of the
    whole process, and a worker with the moderation stack loaded (about 90 MB) takes twice as
    long to fork as one without (about 60 MB).
    """

    queue_class = ModwatchQueue

    def work(self, *args: Any, **kwargs: Any) -> bool:
        freeze_heap()
        return super().work(*args, **kwargs)

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        modules = len(sys.modules)
        try:
            job.func
        except (Exception, SystemExit):  # noqa: BLE001
            pass  # the horse fails the job with RQ's own error, as it would have; the worker goes on
        if len(sys.modules) != modules:
            freeze_heap()
        super().fork_work_horse(job, queue)


class ModwatchSimpleWorker(TracingWorkerMixin, JobMetricsWorkerMixin, SimpleWorker):
    queue_class = ModwatchQueue

    def work(self, *args: Any, **kwargs: Any) -> bool:
        freeze_heap()  # full collections would walk every start-up object again, between jobs
        return super().work(*args, **kwargs)


def build_worker(connection: redis.Redis, queue_names: Sequence[str] = (), simple: bool = False) -> Worker:
    names = list(queue_names) or list(PRIORITY)
    worker_class = ModwatchSimpleWorker if simple else ModwatchWorker
    return worker_class([get_queue(name) for name in names], connection=connection, queue_class=ModwatchQueue)


# Each component's own /metrics port, so a worker and the scheduler on one host never collide; a second
# worker (or scheduler) on the host finds its default taken and takes the first free spare port.
DEFAULT_METRICS_PORTS = {"worker": 9100, "scheduler": 9101, "stream": 9102}
SPARE_METRICS_PORTS = range(9102, 9200)


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
