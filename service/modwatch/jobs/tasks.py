"""The job functions. Plain functions: RQ imports them by dotted path, so names are contracts.

Each body is thin: the work lives in `modwatch.moderation.flows` and `modwatch.telemetry.queue_stats`,
so it can be tested without a queue and the queue can be tested without Mastodon.
"""

from __future__ import annotations

from typing import Any, Callable

from redis.exceptions import LockNotOwnedError

from modwatch.connection import get_redis
from modwatch.moderation import flows

# A poll holds this lock while it runs, so a slow poll is never started a second time by the
# next scheduler tick. The TTL matches the poll job timeout: a killed poll frees it by itself.
POLL_LOCK_TTL = 600


def _run_exclusively(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    lock = get_redis().lock(f"modwatch:poll:running:{name}", timeout=POLL_LOCK_TTL)
    if not lock.acquire(blocking=False):
        return {"outcome": "skipped", "reason": f"{name} is already running"}
    try:
        return work()
    finally:
        try:
            lock.release()
        except LockNotOwnedError:  # held past its TTL: another poll may own it now, and keeps it
            pass


def process_new_status(status: dict[str, Any]) -> dict[str, Any]:
    """Webhook `status.created`: analyse the author with its recent statuses."""
    return flows.handle_new_status(status)


def process_new_report(report: dict[str, Any]) -> dict[str, Any]:
    """Webhook `report.created`: analyse the reported account (never our own reports)."""
    return flows.handle_new_report(report)


def process_new_account(admin_account: dict[str, Any]) -> dict[str, Any]:
    """Webhook `account.created`: analyse a new local account."""
    return flows.handle_new_account(admin_account)


def poll_admin_accounts() -> dict[str, Any]:
    """Recurring: page through remote accounts from the stored cursor."""
    return _run_exclusively("poll_admin_accounts", lambda: flows.poll_accounts(origin="remote"))


def poll_admin_accounts_local() -> dict[str, Any]:
    """Recurring: page through local accounts from the stored cursor."""
    return _run_exclusively("poll_admin_accounts_local", lambda: flows.poll_accounts(origin="local"))


def analyze_and_maybe_report(account_id: str, source: str = "manual") -> dict[str, Any]:
    """Score one account with its recent statuses; file a report when the score reaches the threshold."""
    return flows.analyze_and_maybe_report(account_id, source=source)


def record_queue_stats() -> dict[str, Any]:
    """Recurring on the monitoring queue: snapshot queue, worker and scheduler state for /metrics."""
    from modwatch.telemetry import queue_stats

    return queue_stats.record()
