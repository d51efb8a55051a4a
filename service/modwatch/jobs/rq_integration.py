"""modwatch's RQ classes, in one place: the job, queue and worker classes every process uses.

What they add to RQ is telemetry (a `send` span and a counter per enqueue, a `process` span,
an outcome, a wait and a run time per attempt) and a forking worker that imports what its jobs
run once, before the fork. RQ's public hooks carry what they can: the exception handler records
a job's exception on its attempt's span, `work_horse_killed_handler` records a horse killed
from outside. The rest are overrides of RQ methods RQ does not document as extension points;
each says why in one line, passes arguments it does not know through, and
tests/core/test_rq_integration.py fails when RQ changes that method's signature (checked on
RQ 2.x and 3.x).

The forking worker's horse sends its worker one report, through a pipe, as the last thing it
does (`HorsePipe`): how the attempt ended, the metric changes it made since the fork and its
finished spans. The worker applies them: whatever the horse recorded would otherwise die with
its os._exit. Only when a horse died without reporting does the worker read the attempt's
outcome from Redis. A SimpleWorker runs the job in its own process and records directly.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import rq.registry
import rq.scheduler
import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from redis.client import PubSubWorkerThread
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from modwatch.heap import freeze_heap
from modwatch.telemetry import job_metrics, metrics, tracing
from modwatch.telemetry.job_traces import REQUEST_ID_KEY
from modwatch.telemetry.rq_tracing import SendSpan, end_attempt_span, span_state, start_attempt_span

log = structlog.get_logger(__name__)

MOVING_MODULES = (rq.scheduler, rq.registry)
# redis-py 8.2 added a join to PubSubWorkerThread.stop(); before it, stop() only dropped the flag.
_NO_WAIT = {"timeout": 0} if "timeout" in inspect.signature(PubSubWorkerThread.stop).parameters else {}


class ModwatchJob(Job):
    def prepare_for_execution(self, worker_name: str, pipeline: Any, *args: Any, **kwargs: Any) -> None:
        # Not an RQ extension point: it is where RQ writes the start of an execution, and the attempt's
        # trace id (`rq_tracing.start_attempt_span`) is saved in `meta` within the same transaction.
        super().prepare_for_execution(worker_name, pipeline, *args, **kwargs)
        pipeline.hset(self.key, "meta", self.serializer.dumps(self.meta))


class ModwatchQueue(Queue):
    """RQ's Queue: every way a job enters a queue is traced, each new job counted, in one round trip.

    The `send` span of a job enqueued in one trip ends when its commands are queued in the
    transaction, as with any caller's pipeline; a failed transaction fails the enqueue call itself.
    """

    def enqueue_job(self, job: Job, pipeline: Any = None, *args: Any, **kwargs: Any) -> Job:
        # Every new job passes here (enqueue, enqueue_call, rq-scheduler, the webhook intake); RQ's
        # moves of an existing one (retries, due jobs) do not, so a job counts once.
        unique = kwargs.get("unique", False)
        if pipeline is not None or unique or job.dependency_ids or not self.is_async:
            job = super().enqueue_job(job, pipeline, *args, **kwargs)
        else:
            # RQ registers the queue and saves the job in two transactions; without dependencies or
            # a uniqueness check, one does both: half the round trips, never a queue without its job.
            with self.connection.pipeline() as pipe:
                job = super().enqueue_job(job, pipe, *args, **kwargs)
                pipe.execute()
        job_metrics.enqueued_counter(self.name, job_metrics.function_label(job)).inc()
        return job

    def _enqueue_job(self, job: Job, *args: Any, **kwargs: Any) -> Job:
        # Private, but every path onto a queue ends here (enqueue, dependents, retries, due jobs moved
        # by either scheduler): the one place a `send` span sees them all.
        with SendSpan(self.name, job, "enqueue"):
            return super()._enqueue_job(job, *args, **kwargs)

    def schedule_job(self, job: Job, datetime: datetime, *args: Any, **kwargs: Any) -> Job:
        # Every path into the scheduled registry (enqueue_at/in, retries with a backoff) ends here.
        run_at = datetime if datetime.tzinfo else datetime.replace(tzinfo=timezone.utc)
        with SendSpan(self.name, job, "schedule", **{"messaging.rq.scheduled_for": run_at.isoformat()}):
            return super().schedule_job(job, datetime, *args, **kwargs)


if TYPE_CHECKING:  # for the type checker only: at run time the Worker each mixin is mixed into comes after it
    _WorkerBase = Worker
else:
    _WorkerBase = object


class AttemptTelemetry(_WorkerBase):
    """Mixed into both worker classes: one `process <queue>` span, outcome, wait and run time per attempt.

    The span starts and ends in the worker process and is current while RQ executes the job, so
    RQ's own lines, the job's spans, log lines and retries belong to it; a horse inherits it at
    the fork and reports its end state. Starting it in the horse would cost milliseconds per job
    in copied memory, and a horse killed from outside would take its span with it.
    """

    job_class = ModwatchJob
    queue_class = ModwatchQueue
    # The attempt as the process that ran it saw it: its failure, in a SimpleWorker also its report.
    _attempt_failure: str | None = None
    _attempt_report: job_metrics.Report | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("work_horse_killed_handler", self._horse_killed)
        super().__init__(*args, **kwargs)
        self.push_exc_handler(self._record_exception)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # RQ moves due jobs (its scheduler, backoff retries, enqueue_in/at) and, from 3.0, ready
        # dependents (ReadyJobRegistry) through the `Queue` name of those modules, and takes no
        # queue class for them: pointing the names at ours gives every such move its `send` span.
        # Set in the worker process only, before its scheduler process forks.
        for module in MOVING_MODULES:
            vars(module)["Queue"] = self.queue_class  # the global name RQ's code there looks up
        freeze_heap()  # full collections would walk every start-up object again, between jobs
        return super().work(*args, **kwargs)

    def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        # Not an extension point: RQ unsubscribes, then stops its pubsub thread, counting on the
        # unsubscribe reply to wake it; redis-py 8.2's stop() joins the thread, which, woken before the
        # flag dropped, reads again for 60 s. Dropping the flag first lets the reply end it at once.
        thread = getattr(self, "pubsub_thread", None)
        if thread is not None:
            thread.stop(**_NO_WAIT)
        super().unsubscribe(*args, **kwargs)

    def _record_exception(self, job: Job, exc_type: Any, exc_value: Any, traceback: Any) -> bool:
        """RQ's exception handler hook, called where the job ran, while its attempt's span is current."""
        self._attempt_failure = exc_type.__name__ if exc_type else "unknown"
        span = trace.get_current_span()
        if exc_value is not None:
            span.record_exception(exc_value)
        span.set_attribute("error.type", f"{exc_type.__module__}.{exc_type.__qualname__}" if exc_type else "unknown")
        span.set_status(Status(StatusCode.ERROR, str(exc_value)[:200] if exc_value is not None else None))
        return True  # let RQ's other handlers run

    def _horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        """RQ's `work_horse_killed_handler`: a horse that died without a report, in RQ's words."""
        self._attempt_failure = f"Work-horse terminated unexpectedly; waitpid returned {ret_val}"

    def execute_job(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> None:
        # Not an RQ extension point: the one method around a whole attempt in both worker classes.
        self._attempt_failure = self._attempt_report = None
        span = start_attempt_span(self.name, job, queue)
        context = {"job_id": job.id, "queue": queue.name}
        if request_id := job.meta.get(REQUEST_ID_KEY):  # jobs not enqueued by a request have none
            context["request_id"] = request_id
        enqueued_at, started, started_clock = job.enqueued_at, time.time(), time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False), structlog.contextvars.bound_contextvars(**context):
                super().execute_job(job, queue, *args, **kwargs)
        finally:
            duration = time.perf_counter() - started_clock
            report = self._attempt_report or self.horse_report()
            ended: str | None = None
            try:
                ended = job_metrics.record_attempt(job, report, enqueued_at, started, duration)
            except Exception:  # a metrics failure must never stop the worker
                log.warning("job_metrics_lost", job_id=job.id, exc_info=True)
            failure = None
            if report is None and ended != "succeeded":
                failure = self._attempt_failure or f"attempt {ended or 'unknown'}"
            end_attempt_span(span, (report or {}).get("span"), failure)

    def horse_report(self) -> job_metrics.Report | None:
        """The report of the horse that just ended, applied; None without a horse or a whole report."""
        return None

    def report(self, job: Job, span: Any = None) -> job_metrics.Report:
        """The attempt that just ended, from the job this process ran it with."""
        report: job_metrics.Report = {
            "job_id": job.id,
            "outcome": job_metrics.classify(job.get_status(refresh=False), self._attempt_failure),
            "trace_id": job_metrics.trace_id(job),
        }
        if span is not None and span.is_recording():
            report["span"] = span_state(span)
        return report


class HorsePipe(_WorkerBase):
    """A work horse's last word, its report, goes to its worker through a pipe, and says it is done.

    The report travels over a pipe made for each horse instead of through Redis: no round trip in
    the horse, none in the worker. It is the last thing a horse writes before RQ's os._exit(0),
    so it also tells the worker the horse is done: the kernel tears a process down at exit
    (unmapping its copy of the worker's memory) before waitpid returns, milliseconds per job; the
    worker takes a whole report as exit status 0, goes on with the next job while the horse is
    torn down on the other core, and reaps it later. A horse that dies any other way (crash,
    kill, timeout) closes the pipe without a whole report, and the worker waits for its real exit
    status as RQ does.
    """

    _pipe: int | None = None  # in the worker: the read end; in a horse: the write end
    _received: bytearray  # what the worker has read of the report so far
    _exiting: tuple[int, ...] = ()  # horses done but perhaps not yet reaped
    horse_message: bytes | None = None  # the report the last horse sent, as sent

    def open_pipe(self) -> tuple[int, int]:
        """Before the fork: a fresh pipe, its write end in `_pipe` for the horse; returns (read end, write end):
        the worker closes the write end after the fork and reads the other."""
        self.reap_exited_horses()
        self.horse_message, self._received = None, bytearray()
        read_end, write_end = os.pipe()
        self._pipe = write_end
        return read_end, write_end

    def send_to_worker(self, message: bytes) -> None:
        """In a horse, last: send `message` (length first, so a cut-off one is recognised) and close."""
        assert self._pipe is not None
        framed = memoryview(len(message).to_bytes(8, "big") + message)
        while framed:  # a pipe takes 64 KiB at a time; the worker reads as we write
            framed = framed[os.write(self._pipe, framed):]
        os.close(self._pipe)

    def read_report(self, horse_pid: int) -> bool:
        """In the worker: read the horse's report to its end; True when it came whole."""
        if self._pipe is None:
            return False
        # Interrupted by RQ's monitoring alarm as its wait4 is; what was read so far is kept.
        while chunk := os.read(self._pipe, 65536):
            self._received += chunk
        os.close(self._pipe)
        self._pipe = None
        size = int.from_bytes(self._received[:8], "big")
        if len(self._received) >= 8 and len(self._received) == 8 + size:
            self.horse_message = bytes(self._received[8:])
            self._exiting = (*self._exiting, horse_pid)
            return True
        return False

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


class ModwatchWorker(AttemptTelemetry, HorsePipe, Worker):
    """RQ's forking Worker with modwatch's telemetry; it imports what its jobs run, once.

    A job's function is imported here, in the worker, before the fork: each horse inherits it
    instead of importing it again (the moderation jobs bring SQLAlchemy, Mastodon.py and the rules
    engine). It is imported when the first such job comes, not at start, so a worker holds only
    what its jobs use: fork copies the page tables of the whole process, and a bigger worker
    takes longer to fork (docs/performance.md).
    """

    _metrics_at_start: metrics.Snapshot = {}

    def fork_work_horse(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> None:
        # Not an RQ extension point: the last moment in the worker before the horse exists.
        modules = len(sys.modules)
        try:
            _ = job.func  # imports the job's module
        except (Exception, SystemExit):
            pass  # the horse fails the job with RQ's own error, as it would have; the worker goes on
        if len(sys.modules) != modules:
            freeze_heap()
        read_end, write_end = self.open_pipe()
        try:
            with metrics.FORK_LOCK:  # never fork while /metrics holds a metric's lock
                super().fork_work_horse(job, queue, *args, **kwargs)  # a horse never comes back
        finally:
            os.close(write_end)
            self._pipe = read_end

    def wait_for_horse(self, *args: Any, **kwargs: Any) -> tuple[int | None, int | None, Any]:
        # Not an RQ extension point: a horse's whole report means it is done (see HorsePipe).
        if self.read_report(self.horse_pid):
            return self.horse_pid, os.EX_OK, None
        return super().wait_for_horse(*args, **kwargs)

    def perform_job(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> bool:
        # Not an RQ extension point: the report must go after RQ recorded the outcome, before its os._exit.
        tracing.hold_spans()
        self._metrics_at_start = metrics.start_horse()
        # An exception out of RQ's perform_job ends the horse with status 1 and no report: the
        # worker then reads the attempt's outcome from Redis.
        performed = super().perform_job(job, queue, *args, **kwargs)
        try:
            report = self.report(job, trace.get_current_span())
            report["metrics"] = metrics.changes_since(self._metrics_at_start)
            if spans := tracing.take_held_spans():
                report["spans"] = base64.b64encode(spans).decode()
            self.send_to_worker(json.dumps(report).encode())
        except Exception:  # the job's result is already saved: losing its telemetry must not fail it
            log.warning("horse_metrics_lost", job_id=job.id, exc_info=True)
        return performed

    def horse_report(self) -> job_metrics.Report | None:
        if self.horse_message is None:
            return None
        report = json.loads(self.horse_message)
        job_metrics.apply_report(report)
        return report

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        # Not an RQ extension point: the worker's last step, where horses still exiting are reaped.
        self.reap_exited_horses(block=True)
        super().teardown(*args, **kwargs)


class ModwatchSimpleWorker(AttemptTelemetry, SimpleWorker):
    """RQ's SimpleWorker with the same telemetry; the job runs in this process."""

    def perform_job(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> bool:
        # Not an RQ extension point: the attempt's report is read off the job right after RQ recorded it.
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            self._attempt_report = self.report(job)
