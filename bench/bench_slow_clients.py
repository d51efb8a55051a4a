"""7. Slow clients: `modwatch api` while 200 connections trickle their requests, against the same API unloaded.

The attack of issue 14, without credentials: 100 connections send a webhook head announcing a
100-byte body and then one byte every second; 100 send a head one byte a second and never finish
it. Whatever the server closes (its deadlines, REQUEST_BODY_TIMEOUT and REQUEST_HEADER_TIMEOUT) is
reopened at once, so 200 are held open throughout. Meanwhile, as in the baseline pass without them,
`/livez` is probed every 50 ms (latency from the probe's scheduled time), then THREADS senders post
signed deliveries in a closed loop. The figures: /livez p99 and worst latency under attack
(target: within 1 s), and deliveries accepted per second under attack over the unloaded pass.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import WEBHOOK_SECRET, Row, child_env, flush, free_port, percentile, python, stop, wait_http
from load import closed_loop, signed_bodies

SLOW = 200
THREADS = 4
SECONDS = 10.0
PROBE_INTERVAL = 0.05
TARGET_LIVEZ = 1.0
TARGET_RATIO = 0.8
SLOW_BODY = (b"POST /webhooks/mastodon_events HTTP/1.1\r\nHost: modwatch\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100\r\n\r\n")
SLOW_HEAD = b"GET /livez HTTP/1.1\r\nHost: modwatch\r\n"


class SlowClients:
    """SLOW connections trickling a byte a second each; any the server closes is replaced at once."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.opened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, index: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(SLOW_BODY if index % 2 == 0 else SLOW_HEAD)
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _run(self) -> None:
        sockets = [self._open(index) for index in range(self.count)]
        while not self.stopping.wait(1.0):
            for index, sock in enumerate(sockets):
                try:
                    if sock.recv(65536) == b"":  # answered (408) or closed: both mean closed
                        raise ConnectionResetError
                except BlockingIOError:
                    pass  # nothing from the server: still held
                except OSError:
                    sock.close()
                    sockets[index] = self._open(index)
                    continue
                try:
                    sock.send(b"x" if index % 2 == 0 else b"X")
                except OSError:
                    sock.close()
                    sockets[index] = self._open(index)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> SlowClients:
        self.thread.start()
        while self.opened < self.count:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()


def probe_livez(base: str, seconds: float) -> list[float]:
    """/livez every PROBE_INTERVAL; a latency counts from when the probe was due (a stall is not hidden)."""
    latencies = []
    start = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for index in range(int(seconds / PROBE_INTERVAL)):
            due = start + index * PROBE_INTERVAL
            if (delay := due - time.perf_counter()) > 0:
                time.sleep(delay)
            try:
                ok = client.get(base + "/livez").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - due if ok else float("inf"))
    return latencies


def measure(base: str, bodies: list[tuple[bytes, str]], seconds: float) -> tuple[list[float], int, float]:
    """(/livez latencies, deliveries accepted, their rate): the probes first, then the deliveries, each for
    `seconds`. Apart, so the probes do not wait on the senders' threads in this process (one GIL)."""
    probes = probe_livez(base, seconds)
    result = closed_loop(base + "/webhooks/mastodon_events", bodies, THREADS, seconds)
    return probes, result.statuses[202], result.statuses[202] / result.seconds


def run(seconds: float = SECONDS) -> list[Row]:
    flush()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(python("-m", "modwatch.cli", "api", "--port", str(port)), env=child_env(Path(tmp)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(base + "/livez", process)
            closed_loop(base + "/webhooks/mastodon_events", signed_bodies(WEBHOOK_SECRET, 200, 10**14), THREADS, 1.0)
            flush()
            calm_probes, calm_accepted, calm_rate = measure(base, signed_bodies(WEBHOOK_SECRET, 20_000, 2 * 10**14), seconds)
            with SlowClients(port, SLOW) as slow:
                probes, accepted, rate = measure(base, signed_bodies(WEBHOOK_SECRET, 20_000, 3 * 10**14), seconds)
                reopened = slow.opened - SLOW
        finally:
            stop(process)
    p99, worst = percentile(probes, 0.99), max(probes)
    ratio = rate / calm_rate if calm_rate else 0.0
    return [
        Row("7. /livez with 200 slow connections held open (p99 / worst)", f"{p99 * 1000:.0f} / {worst * 1000:.0f} ms",
            f"{percentile(calm_probes, 0.99) * 1000:.0f} / {max(calm_probes) * 1000:.0f} ms unloaded",
            worst / TARGET_LIVEZ, f"worst <= {TARGET_LIVEZ:g} s", worst <= TARGET_LIVEZ,
            [f"slow clients: {SLOW} held for 2 x {seconds:g} s; the server's deadlines closed {reopened} of them, each "
             f"reopened at once; {len(probes)} /livez probes"]),
        Row("7. signed deliveries accepted with 200 slow connections", f"{rate:.0f}/s ({accepted})",
            f"{calm_rate:.0f}/s ({calm_accepted}) unloaded", ratio, f">= {TARGET_RATIO}", ratio >= TARGET_RATIO,
            [f"deliveries: {THREADS} senders in a closed loop, every one answered 202 counted"]),
    ]
