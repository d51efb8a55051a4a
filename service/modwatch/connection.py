"""One Redis connection pool per process.

RQ and modwatch share it; a fork (RQ's work horse) gets a fresh pool so sockets are never shared
between processes.

A worker waits through a Redis outage: every command retries (redis-py's own `Retry`) for about
`WORKER_REDIS_OUTAGE_SECONDS`, so a job running when Redis goes away records its result when Redis returns,
instead of the worker dying and the job being left abandoned in RQ's started registry. The API keeps
redis-py's short default and answers 503 at once, so Mastodon retries the delivery.
"""

from __future__ import annotations

import os

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from modwatch.settings import get_settings

_client: redis.Redis | None = None
_client_pid: int | None = None
# Seconds a process's Redis commands keep retrying a lost connection; None: redis-py's default (a few tries).
_outage_wait: int | None = None
# Between two tries of a command while Redis is away.
RETRY_PAUSE_SECONDS = 1.0


def wait_through_outages(seconds: int) -> None:
    """Make this process (and the processes it forks) retry Redis commands for about `seconds`."""
    global _outage_wait
    _outage_wait = seconds
    reset_pool()


def _retry_options() -> dict[str, Retry]:
    if _outage_wait is None:
        return {}
    # A refused connection fails at once, so tries x pause is the wait; a black-holed server takes longer.
    return {"retry": Retry(ConstantBackoff(RETRY_PAUSE_SECONDS), int(_outage_wait / RETRY_PAUSE_SECONDS))}


def get_redis() -> redis.Redis:
    """The process's client; building one per call costs more than most commands it sends."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        pool = redis.ConnectionPool.from_url(
            get_settings().effective_redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30,
            **_retry_options(),
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
