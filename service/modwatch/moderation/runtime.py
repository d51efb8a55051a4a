"""Runtime switches: DRY_RUN, PANIC_STOP and the report threshold.

The environment gives the defaults; the Redis hash `modwatch:runtime` overrides them. Every
decision reads the hash afresh, so a toggle takes effect at once in every worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import redis

from modwatch.connection import get_redis
from modwatch.settings import Settings, get_settings

RUNTIME_KEY = "modwatch:runtime"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Runtime:
    dry_run: bool
    panic_stop: bool
    # None: no override; the rules file's threshold, else REPORT_THRESHOLD, applies.
    report_threshold: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def current(settings: Settings | None = None, connection: redis.Redis | None = None) -> Runtime:
    settings = settings or get_settings()
    stored = {k.decode(): v.decode() for k, v in (connection or get_redis()).hgetall(RUNTIME_KEY).items()}
    threshold = stored.get("report_threshold")
    return Runtime(
        dry_run=stored["dry_run"].lower() in _TRUE if "dry_run" in stored else settings.dry_run,
        panic_stop=stored["panic_stop"].lower() in _TRUE if "panic_stop" in stored else settings.panic_stop,
        report_threshold=float(threshold) if threshold else None,
    )


def update(changes: dict, connection: redis.Redis | None = None) -> None:
    """Store overrides; a `report_threshold` of None removes that override."""
    connection = connection or get_redis()
    values = {name: ("1" if value else "0") if isinstance(value, bool) else repr(float(value))
              for name, value in changes.items() if value is not None}
    cleared = [name for name, value in changes.items() if value is None]
    with connection.pipeline() as pipe:
        if values:
            pipe.hset(RUNTIME_KEY, mapping=values)
        if cleared:
            pipe.hdel(RUNTIME_KEY, *cleared)
        pipe.execute()


def report_threshold(runtime: Runtime, rules_threshold: float | None, settings: Settings | None = None) -> float:
    """Runtime override, else the rules file's threshold, else REPORT_THRESHOLD."""
    if runtime.report_threshold is not None:
        return runtime.report_threshold
    if rules_threshold is not None:
        return rules_threshold
    return (settings or get_settings()).report_threshold
