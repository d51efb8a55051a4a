"""Hostile clients and careless operators against real `modwatch` processes over real sockets (issue 14)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from faults.support import API_KEY, WEBHOOK_SECRET, modwatch, stop
from isolation import free_port, wait_for, wait_http


def listening_addresses(pid: int, port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


@pytest.mark.parametrize("command", ["api --port {port}", "dashboard --port {port}", "worker --metrics-port {port}",
                                     "scheduler --metrics-port {port}"])
def test_every_server_listens_on_localhost_by_default(fault_env, tmp_path, command):
    port = free_port()
    process = modwatch(*command.format(port=port).split(), env=fault_env, log=tmp_path / "log")
    try:
        found = wait_for(lambda: listening_addresses(process.pid, port), f"`modwatch {command}` listening")
    finally:
        stop(process)
    assert found == {"127.0.0.1"}


def _signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature": "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()}


def _delivery(object_id: int) -> bytes:
    return json.dumps({"event": "status.created", "object": {"id": str(object_id)}}).encode()


class Api:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.base = f"http://127.0.0.1:{port}"

    def connect(self, head: bytes = b"") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        if head:
            sock.sendall(head)
        return sock

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(httpx.get(self.base + "/metrics", timeout=30).text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@pytest.fixture
def start_api(fault_env, tmp_path):
    started: list[subprocess.Popen] = []

    def start(**settings: str) -> Api:
        port = free_port()
        log = tmp_path / f"api-{port}.log"
        process = modwatch("api", "--port", str(port), env={**fault_env, **settings}, log=log)
        started.append(process)
        wait_http(f"http://127.0.0.1:{port}/livez", process)
        return Api(process, port, log)

    yield start
    for process in started:
        stop(process)


def read_answer(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or the timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


SLOW_BODY = (b"POST /webhooks/mastodon_events HTTP/1.1\r\nHost: modwatch\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100\r\n\r\n{")
SLOW_HEAD = b"GET /livez HTTP/1.1\r\nHost: modwatch\r\nX-Slow: "


def test_a_head_not_sent_within_the_deadline_is_answered_408_and_closed(start_api):
    api = start_api(REQUEST_HEADER_TIMEOUT="1")
    slow, idle = api.connect(SLOW_HEAD), api.connect()
    started = time.monotonic()
    answer = read_answer(slow, 30)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request headers not received within 1 s" in answer
    assert 0.8 < elapsed < 20
    assert read_answer(idle, 30) == b""  # a connection that never asks is closed without an answer


def test_a_body_not_sent_within_the_deadline_is_answered_408_and_closed(start_api):
    api = start_api(REQUEST_BODY_TIMEOUT="1")
    answer = read_answer(api.connect(SLOW_BODY), 30)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request body not received within 1 s" in answer
    assert api.metric("modwatch_http_requests_total", status="408") == 1


def test_slow_clients_starve_neither_health_metrics_jobs_nor_signed_deliveries(start_api):
    """The issue's attack with more connections than the API has threads: 60 slow bodies and 20 slow heads, no
    credentials, held open (deadlines longer than the test). Everything else is answered meanwhile."""
    api = start_api(REQUEST_BODY_TIMEOUT="120", REQUEST_HEADER_TIMEOUT="120")
    slow = [api.connect(SLOW_BODY) for _ in range(60)] + [api.connect(SLOW_HEAD) for _ in range(20)]
    time.sleep(1)
    with httpx.Client(base_url=api.base, timeout=10) as client:
        started = time.monotonic()
        assert client.get("/livez").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/jobs/queues", headers={"X-API-Key": API_KEY}).status_code == 200
        body = _delivery(4242)
        assert client.post("/webhooks/mastodon_events", content=body, headers=_signed(body)).status_code == 202
        elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed  # each answer is milliseconds; 10 s would be a timeout
    for sock in slow:  # the slow ones were still held, not dropped to make room
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        sock.close()


@pytest.mark.parametrize("head, reason", [
    (b"GET /livez HTTP/1.1\r\nHost: m\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"exceed 16384 bytes"),
    (b"GET /livez HTTP/1.1\r\nHost: m\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n",
     b"more than 100 request header fields"),
], ids=["16 KiB", "100 fields"])
def test_too_large_or_too_many_headers_are_answered_431(start_api, head, reason):
    api = start_api()
    answer = read_answer(api.connect(head), 30)
    assert answer.startswith(b"HTTP/1.1 431 ") and reason in answer
    assert api.metric("modwatch_http_requests_total", status="431") == 1


def test_huge_headers_are_refused_while_they_arrive_and_memory_stays_flat(start_api):
    """24 clients each sending 16 MB of headers grew the API by 176 MB; now each is cut off at the limit."""
    api = start_api()
    rss_before = psutil.Process(api.process.pid).memory_info().rss

    def send_huge() -> bytes:
        sock = api.connect(b"GET /livez HTTP/1.1\r\nHost: m\r\nX-Huge: ")
        try:
            for _ in range(16 * 16):  # 16 MB in 64 KiB pieces
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_answer(sock, 30)

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: send_huge(), range(24)))
    grown = psutil.Process(api.process.pid).memory_info().rss - rss_before
    assert all(answer.startswith(b"HTTP/1.1 431 ") or answer == b"" for answer in answers)
    assert any(answer.startswith(b"HTTP/1.1 431 ") for answer in answers)
    assert grown < 40 * 2**20, grown


def test_a_client_hanging_up_mid_body_is_not_a_server_error(start_api):
    api = start_api()
    sock = api.connect(SLOW_BODY)
    time.sleep(0.5)
    sock.close()
    wait_for(lambda: api.metric("modwatch_http_requests_total", status="499") == 1, "the disconnect counted")
    assert api.metric("modwatch_http_requests_total", status="500") == 0
    log = api.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert '"client_disconnected"' in log


def test_webhook_deliveries_are_bounded_and_cannot_starve_liveness(start_api, private_redis):
    """Redis hangs (SIGSTOP): every delivery waits on it. Only WEBHOOK_MAX_CONCURRENCY of them hold a thread;
    the rest are told to come back (503 + Retry-After), and /livez answers at once throughout."""
    api = start_api(REDIS_URL=private_redis.url, WEBHOOK_MAX_CONCURRENCY="4", WEBHOOK_QUEUE_TIMEOUT="1")
    bodies = [_delivery(n) for n in range(1, 61)]
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(60) as pool, httpx.Client(base_url=api.base, timeout=30,
                                                          limits=httpx.Limits(max_connections=100)) as client:
            pending = [pool.submit(client.post, "/webhooks/mastodon_events", content=body, headers=_signed(body))
                       for body in bodies]
            time.sleep(0.5)
            started = time.monotonic()
            assert client.get("/livez").status_code == 200
            livez_seconds = time.monotonic() - started
            answers = [future.result() for future in pending]
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    assert livez_seconds < 1, livez_seconds
    assert {answer.status_code for answer in answers} == {503}
    assert all(int(answer.headers["Retry-After"]) > 0 for answer in answers)
    overloaded = [answer for answer in answers if "too many deliveries" in answer.json()["detail"]]
    assert len(overloaded) >= 50  # at most 4 at a time reached Redis in the second they waited


def test_a_standby_scheduler_says_so_once_and_warns_about_nothing(fault_env, tmp_path):
    """Two schedulers looping every second: the one without the lease logged a WARNING on every loop
    (rq-scheduler's "Lock already taken - skipping run"); a standby is the design, not a fault."""
    env = {**fault_env, "QUEUE_STATS_INTERVAL": "1", "POLL_ADMIN_ACCOUNTS_INTERVAL": "1",
           "POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL": "1"}
    first = modwatch("scheduler", env=env, log=tmp_path / "first.log")
    try:
        wait_for(lambda: "scheduler_leader" in (tmp_path / "first.log").read_text(), "the first to lead")
        second = modwatch("scheduler", env=env, log=tmp_path / "second.log")
        try:
            wait_for(lambda: "scheduler_standby" in (tmp_path / "second.log").read_text(), "the second to stand by")
            time.sleep(5)  # five loops of the standby
        finally:
            stop(second)
    finally:
        stop(first)
    lines = [json.loads(line) for line in (tmp_path / "second.log").read_text().splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines].count("scheduler_standby") == 1
    warnings = [line for line in lines if line["level"] == "warning"]
    assert not warnings, warnings
