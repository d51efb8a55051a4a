"""A small HTTP load generator: threads, one keep-alive httpx client each, pre-signed bodies.

`closed_loop` keeps every thread busy (peak throughput); `paced` sends at a fixed rate and
measures latency from each request's scheduled time, so a stall is not hidden by the sender
waiting for it (coordinated omission).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import itertools
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from common import REPO, percentile

# The suite's finder of the shared recordings: one rule for where they are, and a missing directory ends the
# benchmark saying where it looked.
sys.path.insert(0, str(REPO / "tests"))
from isolation import find_mastodon_recordings


def signed_bodies(secret: str, count: int, first_id: int) -> list[tuple[bytes, str]]:
    """A recorded `status.created` delivery with a unique status id each, and its X-Hub-Signature."""
    envelope = json.loads((find_mastodon_recordings() / "webhooks" / "status.created.body.json").read_text())
    bodies = []
    for object_id in range(first_id, first_id + count):
        envelope["object"]["id"] = str(object_id)
        body = json.dumps(envelope, separators=(",", ":")).encode()
        bodies.append((body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()))
    return bodies


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    def add(self, other: LoadResult) -> None:
        """Count `other` (a later slice of the same load) as part of this result."""
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)


def _post(client: httpx.Client, url: str, body: bytes, signature: str) -> int:
    try:
        return client.post(url, content=body, headers={"Content-Type": "application/json",
                                                      "X-Hub-Signature": signature}).status_code
    except httpx.HTTPError:
        return 0


def closed_loop(url: str, bodies: list[tuple[bytes, str]], threads: int, seconds: float) -> LoadResult:
    result = LoadResult(seconds)
    taken = itertools.count()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run() -> None:
        latencies, statuses = [], Counter()
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < stop_at:
                index = next(taken)
                if index >= len(bodies):  # a faster server than the bodies were made for
                    break
                body, signature = bodies[index]
                started = time.perf_counter()
                statuses[_post(client, url, body, signature)] += 1
                latencies.append(time.perf_counter() - started)
        with lock:
            result.latencies.extend(latencies)
            result.statuses.update(statuses)

    _run_threads(run, threads)
    return result


def paced(url: str, bodies: list[tuple[bytes, str]], rate: float, seconds: float, threads: int) -> LoadResult:
    total = int(rate * seconds)
    result = LoadResult(seconds)
    taken = itertools.count()
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def run() -> None:
        latencies, statuses = [], Counter()
        with httpx.Client(timeout=30) as client:
            while (index := next(taken)) < total:
                scheduled = start + index / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                body, signature = bodies[index]
                statuses[_post(client, url, body, signature)] += 1
                latencies.append(time.perf_counter() - scheduled)
        with lock:
            result.latencies.extend(latencies)
            result.statuses.update(statuses)

    _run_threads(run, threads)
    return result


def _run_threads(target, count: int) -> None:
    # No collections in the load generator while it measures, as timeit does: it holds tens of
    # thousands of pre-signed bodies, and a full collection's pause would count as server latency.
    gc.collect()
    gc.disable()
    try:
        workers = [threading.Thread(target=target) for _ in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        gc.enable()
