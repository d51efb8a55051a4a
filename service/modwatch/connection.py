"""One Redis connection pool per process.

RQ and modwatch share it; a fork (RQ's work horse) gets a fresh pool so sockets are never shared
between processes.
"""

from __future__ import annotations

import os

import redis

from modwatch.settings import get_settings

_client: redis.Redis | None = None
_client_pid: int | None = None


def get_redis() -> redis.Redis:
    """The process's client; building one per call costs more than most commands it sends."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        pool = redis.ConnectionPool.from_url(
            get_settings().effective_redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        _client = redis.Redis(connection_pool=pool)
        _client_pid = os.getpid()
    return _client


def text(value: bytes | str) -> str:
    """A Redis answer as text: modwatch's clients answer bytes (RQ needs them), redis-py's types say either."""
    return value.decode() if isinstance(value, bytes) else value


def reset_pool() -> None:
    """Forget the client and its pool (tests, and after settings change)."""
    global _client, _client_pid
    if _client is not None:
        _client.connection_pool.disconnect()
    _client = None
    _client_pid = None
