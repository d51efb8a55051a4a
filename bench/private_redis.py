"""A redis-server of our own on a free port, so INFO commandstats count only our commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import redis

from common import free_port


# modwatch's queue statistics use EVAL_RO (Redis 7); PATH may find an older redis-server first.
CANDIDATES = ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")


def _version(binary: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return ()
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else ()


def redis_server_binary() -> str:
    """The newest redis-server installed."""
    found = {path: _version(path) for name in CANDIDATES if (path := shutil.which(name))}
    if not found:
        raise RuntimeError("no redis-server installed")
    return max(found, key=found.__getitem__)


@contextmanager
def private_redis() -> Iterator[str]:
    """Yields the URL of a fresh redis-server; stopped and its files removed afterwards."""
    directory = tempfile.mkdtemp(prefix="modwatch-bench-redis-")
    port = free_port()
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
