"""Fixtures for the metrics tests: Redis database 4 of our own, real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from isolation import free_port, wait_http

from isolation import redis_db_url


REDIS_URL = redis_db_url(4)
HERE = Path(__file__).resolve().parent


@pytest.fixture
def metrics_env(modwatch_env):
    return modwatch_env(REDIS_URL, LOG_LEVEL="WARNING")


@pytest.fixture
def db(metrics_env) -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


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
        try:
            wait_http(f"http://127.0.0.1:{self.port}/metrics", self.process, timeout=30)
        except AssertionError as failure:
            self.stop()
            raise RuntimeError(f"worker did not start: {log_path.read_text()[-2000:]}") from failure

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
