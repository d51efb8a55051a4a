"""Fixtures for the metrics tests: Redis database 4 of our own, real worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis


REDIS_URL = "redis://127.0.0.1:6379/4"
HERE = Path(__file__).resolve().parent


@pytest.fixture
def metrics_env(modwatch_env):
    return modwatch_env(REDIS_URL, LOG_LEVEL="WARNING")


@pytest.fixture
def db(metrics_env) -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int, openmetrics: bool = False) -> str:
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


class WorkerProcess:
    """`modwatch worker` on all queues with /metrics on a free port, running until stopped."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modwatch.cli", "worker", "--metrics-port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("w"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(self.port)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"worker did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker_process(metrics_env, tmp_path):
    worker = WorkerProcess(tmp_path / "worker.log")
    yield worker
    worker.stop()


def wait_for(condition, what: str, timeout: float = 30):
    """Poll until condition() is truthy; fails the test naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
