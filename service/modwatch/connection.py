"""One Redis connection pool per process.

RQ and modwatch share it; a fork (RQ's work horse) gets a fresh pool so sockets are never shared
between processes.
"""

from __future__ import annotations

import os

import redis

from modwatch.settings import get_settings

_pool: redis.ConnectionPool | None = None
_pool_pid: int | None = None


def get_redis() -> redis.Redis:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = redis.ConnectionPool.from_url(
            get_settings().effective_redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        _pool_pid = os.getpid()
    return redis.Redis(connection_pool=_pool)


def reset_pool() -> None:
    """Forget the pool (tests, and after settings change)."""
    global _pool, _pool_pid
    if _pool is not None:
        _pool.disconnect()
    _pool = None
    _pool_pid = None
