"""`modwatch check-config` and `modwatch healthcheck`: one line per check, exit code for scripts."""

from __future__ import annotations

import time
from typing import Callable

import httpx

from modwatch.settings import Settings

SCHEDULER_HEALTHY_SECONDS = 60


def _report(name: str, check: Callable[[], str]) -> bool:
    try:
        detail = check()
    except Exception as exc:  # every failure is reported as a line, never a traceback
        print(f"FAIL {name}: {type(exc).__name__}: {exc}")
        return False
    print(f"ok   {name}: {detail}")
    return True


def _database_answers() -> str:
    from modwatch.storage.db import ping_database

    ping_database()
    return "answers"


def check_config(settings: Settings, connect: bool = True) -> int:
    print("ok   settings: valid")
    print(f"     DRY_RUN={settings.dry_run} PANIC_STOP={settings.panic_stop} "
          f"INSTANCE_BASE={settings.instance_base or '(unset: simulator under modwatch run)'}")
    for name, value in (("WEBHOOK_SECRET", settings.webhook_secret), ("API_KEY", settings.api_key),
                        ("MASTODON_ACCESS_TOKEN", settings.mastodon_access_token)):
        print(f"     {name} is {'set' if value is not None else 'NOT set'}")
    if not connect:
        return 0
    from modwatch.connection import get_redis

    results = [
        _report("redis", lambda: f"{settings.effective_redis_url.split('@')[-1]} answers PING={get_redis().ping()}"),
        _report("database", _database_answers),
    ]
    if settings.instance_base:
        from modwatch.mastodon.client import MastodonClient
        from modwatch.moderation import instance_rules

        client = MastodonClient.from_settings(settings)
        results.append(_report("mastodon", lambda: f"version {client.check_version()}"))
        results.append(_report("token", lambda: verify_token(client)))
        results.append(_report("instance rules", lambda: instance_rules.check(client, settings)))
    return 0 if all(results) else 1


# app/models/user_role.rb: what modwatch needs of the token's account.
ROLE_FLAGS = {"administrator": 1 << 0, "manage_reports": 1 << 4, "manage_users": 1 << 10}
NEEDED_PERMISSIONS = ("manage_reports", "manage_users")
# The OAuth scopes modwatch's calls need; a parent scope (`read`, `admin:read`) covers its children.
NEEDED_SCOPES = ("read:accounts", "read:statuses", "write:reports", "admin:read:accounts", "admin:read:reports")


def verify_token(client) -> str:
    """Who the token is, and that its role and scopes allow what modwatch does; raises naming what is missing."""
    account = client.verify_credentials()  # 401: the token is invalid or revoked
    role = account.get("role") or {}
    permissions = int(role.get("permissions") or 0)
    admin = permissions & ROLE_FLAGS["administrator"]
    lacking = [name for name in NEEDED_PERMISSIONS if not admin and not permissions & ROLE_FLAGS[name]]
    scopes = set(client.app_credentials().get("scopes") or [])
    missing = [scope for scope in NEEDED_SCOPES if not covered(scope, scopes)]
    who = f"@{account.get('acct')} (id {account.get('id')}), role {role.get('name') or 'none'}"
    if lacking or missing:
        raise PermissionError(f"{who}: " + "; ".join(
            ([f"the role lacks {', '.join(lacking)} (modwatch needs a moderator or admin account)"] if lacking else [])
            + ([f"the token lacks the scopes {', '.join(missing)}"] if missing else [])))
    return f"{who}, scopes {' '.join(sorted(scopes))}"


def covered(scope: str, granted: set[str]) -> bool:
    """`admin:read:accounts` is granted by itself, `admin:read` or (for read/write) `read`/`write`."""
    parts = scope.split(":")
    return any(":".join(parts[:n]) in granted for n in range(1, len(parts) + 1))


def healthcheck(settings: Settings, component: str) -> int:
    from modwatch.connection import get_redis

    if component == "api":
        ok = _report("api", lambda: _api_ready())
    elif component == "worker":
        from modwatch.jobs.worker import healthy_worker_on_host

        ok = _report("worker", lambda: _true_or_raise(healthy_worker_on_host(get_redis()), "no fresh worker heartbeat on this host"))
    elif component == "stream":
        from modwatch.stream.consumer import healthy_on_host

        ok = _report("stream", lambda: _true_or_raise(healthy_on_host(get_redis()), "no stream consumer ticked on this host"))
    else:
        from modwatch.jobs.scheduler import heartbeat_age

        ok = _report("scheduler", lambda: _scheduler_fresh(heartbeat_age(get_redis())))
    return 0 if ok else 1


def _api_ready() -> str:
    response = httpx.get("http://127.0.0.1:8080/readyz", timeout=5)
    response.raise_for_status()
    return "ready"


def _true_or_raise(value: bool, message: str) -> str:
    if not value:
        raise RuntimeError(message)
    return "heartbeat fresh"


def _scheduler_fresh(age: float | None) -> str:
    if age is None or age > SCHEDULER_HEALTHY_SECONDS:
        raise RuntimeError(f"scheduler heartbeat {'missing' if age is None else f'{age:.0f}s old'}")
    return f"heartbeat {age:.0f}s old at {time.strftime('%H:%M:%S')}"
