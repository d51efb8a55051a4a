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
    from modwatch.storage.db import ping_database

    results = [
        _report("redis", lambda: f"{settings.effective_redis_url.split('@')[-1]} answers PING={get_redis().ping()}"),
        _report("database", lambda: (ping_database(), "answers")[1]),
    ]
    if settings.instance_base:
        from modwatch.mastodon.client import MastodonClient

        results.append(_report("mastodon", lambda: f"version {MastodonClient.from_settings(settings).check_version()}"))
    return 0 if all(results) else 1


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
