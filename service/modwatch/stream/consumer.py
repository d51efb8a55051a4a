"""`modwatch stream`: one active consumer of Mastodon's public streams per instance.

Threads of the active consumer:

- one reader per stream (STREAMS): Mastodon.py connects, `EventListener` parses, posts and deletes
  go onto one in-process queue. A connection that ends or fails is opened again after a backoff
  (0.5 s doubling to 60 s, with jitter; back to 0.5 s once a connection delivered something).
- a gap fill after every (re)connection: the timeline above the last post seen (`min_id`), oldest
  page first, within STREAM_GAP_MAX_PAGES pages and the shared rate-limit gate, onto the same
  queue. A fresh consumer starts from the cursor recorded in the database, so a takeover refills
  what its predecessor received but never recorded. Until a gap is filled, the stream's cursor
  stays where the gap began, so a consumer killed mid-fill leaves the next one the same gap.
- the batcher: takes up to STREAM_BATCH_SIZE items, waiting at most STREAM_BATCH_WAIT after the
  first, and has `moderation.stream_analysis` decide and record them in one span.

The main thread holds the lease (`modwatch:stream:leader`, a redis-py Lock renewed every third of
STREAM_LEASE_SECONDS). A standby tries to take it at the same pace, so it takes over within one
lease after the active consumer dies. A consumer that cannot renew stops deciding at once and
steps down; what it had queued is left to the next consumer's gap fill.
"""

from __future__ import annotations

import functools
import os
import queue
import random
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import redis
import structlog
from opentelemetry import trace
from redis.exceptions import LockError

from modwatch.mastodon.client import MastodonClient
from modwatch.mastodon.errors import MastodonError
from modwatch.moderation import ratelimit
from modwatch.moderation.stream_analysis import Deleted, Received, Seen, Window, analyse_batch, last_status_id, save_cursor
from modwatch.redis_keys import STREAM_HEARTBEAT_KEY, STREAM_LEASE_KEY
from modwatch.settings import Settings
from modwatch.stream.listener import EventListener
from modwatch.telemetry.metrics import (
    STREAM_ACTIVE,
    STREAM_BATCH_DURATION,
    STREAM_BATCH_SIZE,
    STREAM_CONNECTED,
    STREAM_DECISION_LATENCY,
    STREAM_GAP_FILLED,
    STREAM_GAPS_UNFILLED,
    STREAM_RECONNECTS,
)

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("modwatch.stream")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 60.0
GAP_PAGE = 40  # Mastodon's page maximum for timelines


@dataclass
class GapFilled:
    """Queued after a gap's posts: once the batcher reaches it, the stream's cursor may move on."""

    stream: str


class Consumer:
    def __init__(self, settings: Settings, connection: redis.Redis,
                 report: Callable[[dict[str, Any], list[dict[str, Any]]], str | None],
                 client_factory: Callable[[], MastodonClient] | None = None) -> None:
        self.settings = settings
        self.connection = connection
        self.report = report
        self.client_factory = client_factory or (lambda: MastodonClient.from_settings(settings))
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = connection.lock(STREAM_LEASE_KEY, timeout=settings.stream_lease_seconds, thread_local=False)
        # Bounded: when analysis falls behind, the backlog waits in the socket and on the server
        # (TCP backpressure) instead of piling up here as objects every garbage collection walks.
        self.items: queue.Queue[Received | Deleted | GapFilled] = queue.Queue(maxsize=4 * settings.stream_batch_size)
        self.stopping = threading.Event()
        self.term = 0  # bumped each time this consumer becomes active; 0 while standby
        self.window = Window()
        self.seen = Seen()
        self.filling: dict[str, int] = {name: 0 for name in settings.stream_names}
        self.newest: dict[str, int | None] = {name: None for name in settings.stream_names}
        self.recorded: dict[str, int] = {}  # newest post id decided per stream in this term
        for name in settings.stream_names:
            STREAM_CONNECTED.labels(stream=name).set(0)
        STREAM_ACTIVE.set(0)

    @property
    def active(self) -> bool:
        return self.term > 0

    # The lease

    def run(self) -> None:
        """Hold or wait for the lease until stopped; the active consumer's threads do the work."""
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        threading.Thread(target=self._batches, name="stream-batcher", daemon=True).start()
        log.info("stream_consumer_started", consumer=self.name, streams=self.settings.stream_names)
        while not self.stopping.is_set():
            self.tick()
            self.stopping.wait(self.settings.stream_lease_seconds / 3)
        self.step_down("stopped")

    def tick(self) -> None:
        try:
            self.connection.set(STREAM_HEARTBEAT_KEY.format(host=socket.gethostname()), time.time(),
                                ex=3 * self.settings.stream_lease_seconds)
            if self.active:
                self.lease.reacquire()
            elif self.lease.acquire(blocking=False, token=self.name):
                self.take_over()
        except (LockError, redis.RedisError) as exc:
            if self.active:
                self.step_down(f"lease lost: {exc}")

    def take_over(self) -> None:
        self.filling = {name: 0 for name in self.settings.stream_names}
        self.recorded = {}  # newest post id decided per stream in this term
        self.term = int(time.time() * 1000)
        STREAM_ACTIVE.set(1)
        log.info("stream_consumer_active", consumer=self.name)
        for name in self.settings.stream_names:
            self.newest[name] = _int(last_status_id(name))
            threading.Thread(target=self._read, args=(name, self.term), name=f"stream-{name}", daemon=True).start()

    def step_down(self, reason: str) -> None:
        was_active, self.term = self.active, 0
        STREAM_ACTIVE.set(0)
        if was_active:
            (log.info if reason == "stopped" else log.warning)("stream_consumer_standby", consumer=self.name,
                                                               reason=reason)
            try:
                self.lease.release()
            except (LockError, redis.RedisError):
                pass  # lapsed already: someone else may hold it now

    # Reading

    def _read(self, stream: str, term: int) -> None:
        backoff = BACKOFF_FIRST_SECONDS
        client = self.client_factory()
        while self.term == term and not self.stopping.is_set():
            listener = EventListener(stream, self.items.put, functools.partial(self._opened, stream, term))
            try:
                client.stream(stream, listener, self.settings.stream_read_timeout)
                reason = "ended"
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect later
                reason = _reason(exc)
                log.warning("stream_disconnected", stream=stream, reason=reason, error=str(exc)[:200])
            STREAM_CONNECTED.labels(stream=stream).set(0)
            if listener.newest_post_id:
                self.newest[stream] = max(self.newest[stream] or 0, listener.newest_post_id)
            if self.term != term or self.stopping.is_set():
                return
            STREAM_RECONNECTS.labels(stream=stream, reason=reason).inc()
            if listener.opened:
                backoff = BACKOFF_FIRST_SECONDS
            self.stopping.wait(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    def _opened(self, stream: str, term: int, listener: EventListener) -> None:
        STREAM_CONNECTED.labels(stream=stream).set(1)
        log.info("stream_connected", stream=stream)
        since = self.newest[stream]
        if since is None or self.settings.stream_gap_max_pages == 0:
            return
        # Counted before this connection delivers anything, so no live post moves the cursor past the gap.
        self.filling[stream] += 1
        threading.Thread(target=self._fill, args=(stream, since, term, listener), name=f"gap-{stream}",
                         daemon=True).start()

    def _fill(self, stream: str, since: int, term: int, listener: EventListener) -> None:
        client = self.client_factory()
        cursor, pages, filled, complete = str(since), 0, 0, False
        try:
            while pages < self.settings.stream_gap_max_pages and self.term == term:
                # A min_id page counts against Mastodon's paging limit, shared with polls and moderators.
                if ratelimit.acquire_page(self.settings.poll_paging_share, self.settings.stream_gap_max_pages) is not None:
                    break
                try:
                    page = client.public_timeline(stream, min_id=cursor, limit=GAP_PAGE)
                finally:
                    ratelimit.observe_answers(client)
                pages += 1
                for status in sorted(page.items, key=lambda s: int(s["id"])):
                    self.items.put(Received(stream, "update", status, via="gap_fill"))
                filled += len(page.items)
                if not page.items:
                    complete = True
                    break
                cursor = max((s["id"] for s in page.items), key=int)
                live = listener.first_post_id
                if len(page.items) < GAP_PAGE or (live is not None and int(cursor) >= live):
                    complete = True
                    break
        except MastodonError as exc:
            log.warning("stream_gap_fill_failed", stream=stream, error=str(exc)[:200])
        finally:
            STREAM_GAP_FILLED.labels(stream=stream).inc(filled)
            if not complete:
                STREAM_GAPS_UNFILLED.labels(stream=stream).inc()
            log.info("stream_gap_filled", stream=stream, since_id=str(since), posts=filled, pages=pages,
                     complete=complete)
            self.items.put(GapFilled(stream))

    # Deciding

    def _batches(self) -> None:
        size, wait = self.settings.stream_batch_size, self.settings.stream_batch_wait
        while True:
            try:
                first = self.items.get(timeout=0.5)
            except queue.Empty:
                if self.stopping.is_set():
                    return
                continue
            batch, deadline = [first], time.monotonic() + wait
            while len(batch) < size:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self.items.get(timeout=remaining) if remaining > 0 else self.items.get_nowait())
                except queue.Empty:
                    break
            self.decide_until_recorded(batch)

    def decide_until_recorded(self, batch: list[Received | Deleted | GapFilled]) -> None:
        """A decision is never dropped: a failed batch (database or Redis down) is tried again."""
        delay = 0.5
        while True:
            try:
                self.decide(batch)
                return
            except Exception:  # noqa: BLE001 - logged, and the same batch is tried again
                log.exception("stream_batch_failed", posts=len(batch), retry_in=delay)
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, 30.0)

    def decide(self, batch: list[Received | Deleted | GapFilled]) -> None:
        if not self.active:
            return  # a standby decides nothing: the active consumer's gap fill covers these
        items: list[Received | Deleted] = []
        for item in batch:
            if isinstance(item, GapFilled):
                self._decide(items)
                items = []
                self.filling[item.stream] = max(0, self.filling[item.stream] - 1)
                if not self.filling[item.stream] and self.recorded.get(item.stream):
                    save_cursor(item.stream, str(self.recorded[item.stream]))
            else:
                items.append(item)
        self._decide(items)

    def _decide(self, items: list[Received | Deleted]) -> None:
        if not items:
            return
        started = time.perf_counter()
        newest = dict(self.recorded)
        for item in items:
            if isinstance(item, Received) and str(item.status.get("id", "")).isdigit():
                newest[item.stream] = max(newest.get(item.stream, 0), int(item.status["id"]))
        # While a gap is being filled the cursor stays where the gap began.
        cursors = {stream: str(value) for stream, value in newest.items() if not self.filling.get(stream)}
        batch_id = uuid.uuid4().hex
        with tracer.start_as_current_span("stream batch", kind=trace.SpanKind.CONSUMER, attributes={
                "messaging.system": "mastodon", "messaging.operation.type": "process",
                "messaging.batch.message_count": len(items), "modwatch.stream.batch_id": batch_id}) as span:
            context = span.get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            outcome = analyse_batch(items, self.window, self.seen, self.settings, self.report, batch_id, trace_id,
                                    cursors)
            span.set_attribute("modwatch.stream.reported", len(outcome.reported))
        self.recorded = newest
        done = time.time()
        STREAM_BATCH_SIZE.observe(len(items))
        STREAM_BATCH_DURATION.observe(time.perf_counter() - started)
        for item in outcome.decided:
            STREAM_DECISION_LATENCY.observe(done - item.received_at)
        if outcome.reported:
            log.info("stream_reports_started", accounts=len(outcome.reported), batch_id=batch_id)


def healthy_on_host(connection: redis.Redis, host: str | None = None) -> bool:
    """A consumer on this host (active or standing by) ticked within three leases."""
    return connection.exists(STREAM_HEARTBEAT_KEY.format(host=host or socket.gethostname())) == 1


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _reason(exc: Exception) -> str:
    """A bounded label for why a connection ended."""
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if "Network" in name or "Connection" in name:
        return "network"
    return "error"
