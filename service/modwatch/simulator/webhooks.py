"""Webhook deliveries the way Mastodon sends them: a JSON envelope signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import time
from datetime import datetime, timezone

import httpx

from modwatch.simulator import entities
from modwatch.simulator.state import SimState

EVENTS = ("account.created", "status.created", "report.created")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(target_url: str, secret: str, event: str, obj: dict, timeout: float = 5.0) -> int:
    """POST one signed envelope; returns the receiver's status code (0 when unreachable)."""
    body = json.dumps(entities.envelope(event, obj, datetime.now(timezone.utc)), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature(secret, body),
               "User-Agent": "Mastodon/4 (modwatch simulator)"}
    try:
        return httpx.post(target_url, content=body, headers=headers, timeout=timeout).status_code
    except httpx.HTTPError:
        return 0


def event_object(state: SimState, event: str, rng: random.Random) -> dict | None:
    """A random object for `event`. Mastodon sends account and status events for local ones only."""
    with state.lock:
        if event == "account.created":
            pool = sorted(a.id for a in state.accounts.values() if a.domain is None and a.pattern != "staff")
            return entities.admin_account(state, state.accounts[rng.choice(pool)]) if pool else None
        if event == "status.created":
            pool = sorted(s.id for s in state.statuses.values() if state.accounts[s.account_id].domain is None)
            return entities.status(state, state.statuses[rng.choice(pool)]) if pool else None
        if event == "report.created":
            return entities.admin_report(state, rng.choice(state.reports)) if state.reports else None
    raise ValueError(f"unknown webhook event {event!r}; known: {', '.join(EVENTS)}")


def send_webhooks(state: SimState, target_url: str, secret: str, rate_per_second: float = 1.0,
                  count: int | None = None, events: tuple[str, ...] = ("account.created", "status.created"),
                  stop=None) -> list[int]:
    """Deliver `count` events (forever when None), cycling through `events`, at most `rate_per_second`.

    `stop` is an optional threading.Event that ends the loop early. Returns the receivers' status codes.
    """
    rng = random.Random(state.config.seed)
    interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    statuses: list[int] = []
    for sent, event in enumerate(itertools.cycle(events)):
        if (count is not None and sent >= count) or (stop is not None and stop.is_set()):
            break
        obj = event_object(state, event, rng)
        if obj is not None:
            statuses.append(deliver(target_url, secret, event, obj))
        if interval:
            time.sleep(interval)
    return statuses
