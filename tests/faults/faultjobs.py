"""Job functions for the fault drills; worker subprocesses import them through PYTHONPATH."""

import time

from modwatch.connection import get_redis


def slow(name: str, seconds: float) -> str:
    """Counts its starts and its completions in Redis, so a drill can tell a rerun from a finish."""
    connection = get_redis()
    connection.incr(f"faults:{name}:started")
    time.sleep(seconds)
    connection.incr(f"faults:{name}:finished")
    return name
