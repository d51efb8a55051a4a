"""The job functions. Plain functions: RQ imports them by dotted path, so names are contracts.

Each body is thin: the work lives in `modwatch.moderation.flows`, so it can be tested without a
queue and the queue can be tested without Mastodon. This module loads the moderation stack
(SQLAlchemy, Mastodon.py, the rules engine) as it is imported, which is what a forking worker
wants: it imports a job's module before the fork, once, and every horse inherits it. The
monitoring job, which needs none of it, lives in `modwatch.jobs.monitoring`. Moderation never
enqueues: the follow-ups a flow returns are enqueued here (`_dispatch`).
"""

from __future__ import annotations

from typing import Any, Callable

from redis.exceptions import LockNotOwnedError

from modwatch.connection import get_redis
from modwatch.moderation import flows
from modwatch.moderation.followups import FollowUp, detach
from modwatch.redis_keys import POLL_RUNNING_KEY

# A poll holds this lock while it runs, so a slow poll is never started a second time by the
# next scheduler tick. The TTL matches the poll job timeout: a killed poll frees it by itself.
POLL_LOCK_TTL = 600


def _run_exclusively(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    lock = get_redis().lock(POLL_RUNNING_KEY.format(name=name), timeout=POLL_LOCK_TTL)
    if not lock.acquire(blocking=False):
        return {"outcome": "skipped", "reason": f"{name} is already running"}
    try:
        return work()
    finally:
        try:
            lock.release()
        except LockNotOwnedError:  # held past its TTL: another poll may own it now, and keeps it
            pass


def _submit(follow_ups: list[FollowUp]) -> int:
    # Imported here: jobs.enqueue maps these very functions to their options, so it imports this module.
    from modwatch.jobs.enqueue import submit

    return submit(follow_ups)


def _dispatch(result: dict[str, Any]) -> dict[str, Any]:
    """Enqueue the follow-ups a flow returned; the stored result keeps only their job ids."""
    follow_ups = detach(result)
    if follow_ups:
        _submit(follow_ups)
        result["follow_up_job_ids"] = [item.job_id for item in follow_ups]
    return result


def process_new_status(status: dict[str, Any]) -> dict[str, Any]:
    """Webhook `status.created`: analyse the delivered post with the author's other delivered posts."""
    return _dispatch(flows.handle_status(status))


def process_status_update(status: dict[str, Any]) -> dict[str, Any]:
    """Webhook `status.updated`: analyse the post as edited."""
    return _dispatch(flows.handle_status(status))


def process_account_update(admin_account: dict[str, Any]) -> dict[str, Any]:
    """Webhook `account.updated`: analyse the profile as edited."""
    return _dispatch(flows.handle_account(admin_account))


def process_new_report(report: dict[str, Any]) -> dict[str, Any]:
    """Webhook `report.created`: analyse the reported account (never our own reports)."""
    return _dispatch(flows.handle_new_report(report))


def process_new_account(admin_account: dict[str, Any]) -> dict[str, Any]:
    """Webhook `account.created`: analyse a new local account."""
    return _dispatch(flows.handle_account(admin_account))


def process_report_update(report: dict[str, Any]) -> dict[str, Any]:
    """Webhook `report.updated`: a moderator's verdict on one of modwatch's reports, counted per rule."""
    return flows.handle_report_update(report)


def sync_report_outcomes() -> dict[str, Any]:
    """Verdicts of recently resolved reports (one admin API request); polls also run it every REPORT_OUTCOMES_INTERVAL."""
    return _run_exclusively("sync_report_outcomes", lambda: flows.sync_report_outcomes())


def poll_admin_accounts() -> dict[str, Any]:
    """Recurring: page through remote accounts from the stored cursor."""
    return _run_exclusively("poll_admin_accounts", lambda: _dispatch(flows.poll_accounts("remote", _submit)))


def poll_admin_accounts_local() -> dict[str, Any]:
    """Recurring: page through local accounts from the stored cursor."""
    return _run_exclusively("poll_admin_accounts_local", lambda: _dispatch(flows.poll_accounts("local", _submit)))


def file_pending_reports() -> dict[str, Any]:
    """Recurring: file the report decisions that wait (a rate-limit window, PANIC_STOP lifted, dry-run
    decisions an operator filed, a look for an earlier attempt), oldest evidence first."""
    return _run_exclusively("file_pending_reports", flows.file_pending_reports)


def analyze_and_maybe_report(account_id: str, source: str = "manual") -> dict[str, Any]:
    """Score one account with its recent statuses; file a report when the score reaches the threshold."""
    return _dispatch(flows.analyze_and_maybe_report(account_id, source=source))


def report_streamed_account(account: dict[str, Any], statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """Stream: file the report on an account the stream's analysis put over the threshold.

    The account and its posts come from the stream: nothing is fetched again.
    """
    return _dispatch(flows.analyse_payload(account, statuses, source="stream"))
