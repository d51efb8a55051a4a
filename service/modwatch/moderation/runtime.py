"""Runtime switches: DRY_RUN, PANIC_STOP and the report threshold.

The environment gives the defaults; the Redis hash `modwatch:runtime` overrides them. Every
decision reads the hash afresh, so a toggle takes effect at once in every worker. Overrides
outlive restarts, so every change is logged and written to the audit log (who: the API key's
fingerprint, or `env` when a restart brought a new environment value; when; old -> new), and
`modwatch:runtime:meta` keeps since when and by whom each override is in force.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import redis
import structlog

from modwatch.connection import get_redis, text
from modwatch.redis_keys import RUNTIME_ENV_KEY, RUNTIME_KEY, RUNTIME_META_KEY
from modwatch.settings import Settings, get_settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import AuditEntry

SWITCHES = ("dry_run", "panic_stop", "report_threshold")
AUDIT_DECISION = "runtime_switch"
_TRUE = {"1", "true", "yes", "on"}
log = structlog.get_logger(__name__)


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
    stored = {text(k): text(v) for k, v in (connection or get_redis()).hgetall(RUNTIME_KEY).items()}
    threshold = stored.get("report_threshold")
    return Runtime(
        dry_run=stored["dry_run"].lower() in _TRUE if "dry_run" in stored else settings.dry_run,
        panic_stop=stored["panic_stop"].lower() in _TRUE if "panic_stop" in stored else settings.panic_stop,
        report_threshold=float(threshold) if threshold else None,
    )


def update(changes: dict, by: str = "internal", connection: redis.Redis | None = None) -> None:
    """Store overrides (a `report_threshold` of None removes that override), audited as made `by`
    (the API passes its caller's key fingerprint; `internal` is code that is not the API)."""
    connection = connection or get_redis()
    before = current(connection=connection).as_dict()
    values = {name: ("1" if value else "0") if isinstance(value, bool) else repr(float(value))
              for name, value in changes.items() if value is not None}
    cleared = [name for name, value in changes.items() if value is None]
    since = datetime.now(timezone.utc).isoformat()
    # The audit rows commit only once Redis took the change: no entry for a change that did not happen.
    with session_scope() as session:
        _audit(session, before, {**before, **changes}, by)
        with connection.pipeline() as pipe:
            if values:
                pipe.hset(RUNTIME_KEY, mapping=values)
                pipe.hset(RUNTIME_META_KEY, mapping={name: json.dumps({"since": since, "by": by}) for name in values})
            if cleared:
                pipe.hdel(RUNTIME_KEY, *cleared)
                pipe.hdel(RUNTIME_META_KEY, *cleared)
            pipe.execute()


def _audit(session: Any, before: dict, after: dict, by: str) -> None:
    for name in SWITCHES:
        if before[name] != after[name]:
            change = f"{name}: {_shown(before[name])} -> {_shown(after[name])}"
            session.add(AuditEntry(decision=AUDIT_DECISION, source=by[:32], reason=change))
            log.info("runtime_switch_changed", switch=name, old=before[name], new=after[name], by=by)


def _shown(value: Any) -> str:
    return "unset" if value is None else json.dumps(value)


def overrides_meta(connection: redis.Redis | None = None) -> dict[str, dict[str, str]]:
    """Since when and by whom each override in force was set."""
    stored = (connection or get_redis()).hgetall(RUNTIME_META_KEY)
    return {text(name): json.loads(value) for name, value in stored.items()}


def note_environment(settings: Settings, connection: redis.Redis | None = None) -> None:
    """At start: audit an environment value that differs from the last start's (by `env`), and say
    which runtime overrides are in force over the environment, since when and by whom."""
    connection = connection or get_redis()
    env = {"dry_run": settings.dry_run, "panic_stop": settings.panic_stop, "report_threshold": settings.report_threshold}
    previous = {text(name): json.loads(value) for name, value in connection.hgetall(RUNTIME_ENV_KEY).items()}
    if previous and previous != env:
        with session_scope() as session:
            _audit(session, {**env, **previous}, env, "env")
    connection.hset(RUNTIME_ENV_KEY, mapping={name: json.dumps(value) for name, value in env.items()})
    stored = {text(name): text(value) for name, value in connection.hgetall(RUNTIME_KEY).items()}
    if stored:
        log.warning("runtime_overrides_in_force", overrides=stored, environment=env, set=overrides_meta(connection),
                    hint="POST /moderation/settings changes them; a threshold of null removes its override")


def report_threshold(runtime: Runtime, rules_threshold: float | None, settings: Settings | None = None) -> float:
    """Runtime override, else the rules file's threshold, else REPORT_THRESHOLD."""
    if runtime.report_threshold is not None:
        return runtime.report_threshold
    if rules_threshold is not None:
        return rules_threshold
    return (settings or get_settings()).report_threshold
