"""Polling admin accounts with a stored cursor, per origin.

Each run spends at most POLL_MAX_PAGES requests, in this order:

1. New accounts: `min_id=<newest id seen>` returns the page just above it, so walking up page by
   page misses nothing however many accounts arrived (`since_id` would return only the newest
   page and skip the middle).
2. The sweep: newest to oldest with `max_id`, continuing where the last run stopped. When it
   reaches the oldest account it starts over from the top, so every account is listed again and
   one that posted since its last analysis is rescanned.

The cursor is committed after every page, so a run that dies resumes at the page it was on.
Accounts are not analysed here: each one that is new, or whose status count or last status date
changed since its last analysis, becomes a follow-up handed to the caller's sink after its page
(before the cursor moves on), which jobs/ turns into an `analyze_and_maybe_report` job. A poll
then stays one request per page, and each analysis retries (or waits out a 429) on its own.
"""

from __future__ import annotations

from typing import Any

from modwatch.connection import get_redis
from modwatch.mastodon.client import MastodonClient, Page
from modwatch.moderation import analysis, ratelimit, runtime
from modwatch.moderation.followups import FollowUp, Sink
from modwatch.redis_keys import ANALYSIS_DEFERRED_KEY
from modwatch.settings import Settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import PollCursor

PAGE_LIMIT = 100  # Mastodon's default page for admin accounts


def source_of(origin: str) -> str:
    return f"poll_{origin}"


def load_cursor(origin: str) -> PollCursor:
    with session_scope() as session:
        cursor = session.get(PollCursor, origin)
        if cursor is None:
            cursor = PollCursor(origin=origin, sweeps_completed=0)
            session.add(cursor)
        return cursor


def save_cursor(cursor: PollCursor) -> None:
    with session_scope() as session:
        session.merge(cursor)


def newest(ids: list[str], current: str | None) -> str | None:
    return max([*ids, *([current] if current else [])], key=int, default=None)


def poll(origin: str, client: MastodonClient, settings: Settings, submit: Sink) -> dict[str, Any]:
    cursor = load_cursor(origin)
    result: dict[str, Any] = {"outcome": "polled", "origin": origin, "pages": 0, "accounts": 0, "enqueued": 0}

    def fetch(**position: str | None) -> Page | None:
        if runtime.current(settings).panic_stop:
            result.update(outcome="skipped", reason="PANIC_STOP is on")
            return None
        # A page with a cursor counts against Mastodon's paging limit too, of which polls take their share.
        paging = any(position.values())
        wait = (ratelimit.acquire_page(settings.poll_paging_share, settings.poll_max_pages) if paging
                else ratelimit.acquire(priority=True, book=False))
        if wait is not None:
            result.update(outcome="polled" if result["pages"] else "rate_limited", held_back_by=wait.family,
                          resume_at=wait.until.isoformat())
            return None
        page = client.admin_accounts(origin, status="active", limit=PAGE_LIMIT, **position)
        result["pages"] += 1
        result["accounts"] += len(page.items)
        result["enqueued"] += submit(changed(page.items, source_of(origin)))
        return page

    while cursor.newest_id is not None and result["pages"] < settings.poll_max_pages:
        page = fetch(min_id=cursor.newest_id)
        if page is None or not page.items:
            break
        cursor.newest_id = newest([item["id"] for item in page.items], cursor.newest_id)
        save_cursor(cursor)
        if len(page.items) < PAGE_LIMIT:
            break
    while result["pages"] < settings.poll_max_pages:
        page = fetch(max_id=cursor.sweep_max_id)
        if page is None:
            break
        ids = [item["id"] for item in page.items]
        if cursor.sweep_max_id is None:
            cursor.newest_id = newest(ids, cursor.newest_id)
        if page.next_max_id is None or not ids:
            cursor.sweep_max_id = None
            cursor.sweeps_completed += 1
            save_cursor(cursor)
            break
        cursor.sweep_max_id = page.next_max_id
        save_cursor(cursor)
    result.update(newest_id=cursor.newest_id, sweep_max_id=cursor.sweep_max_id)
    return result


def analysis_job_id(admin_account: dict[str, Any]) -> str:
    """One job per account and posting state: a poll that sees the same state again adds nothing."""
    account = analysis.public_account(admin_account)
    return f"analyze-{admin_account['id']}-{account.get('statuses_count', 0)}-{account.get('last_status_at') or 'never'}"


def changed(items: list[dict[str, Any]], source: str) -> list[FollowUp]:
    """An analysis for each account that is new or has posted since its last analysis, unless one
    already waits for a rate-limit slot."""
    seen = analysis.last_seen([str(item["id"]) for item in items])
    wanted: dict[str, str] = {}  # job id -> account id
    for item in items:
        account = analysis.public_account(item)
        if seen.get(str(item["id"])) != (account.get("statuses_count"), account.get("last_status_at")):
            wanted[analysis_job_id(item)] = str(item["id"])
    if not wanted:
        return []
    with get_redis().pipeline(transaction=False) as pipe:
        for account_id in wanted.values():
            pipe.exists(ANALYSIS_DEFERRED_KEY.format(account_id=account_id))
        deferred = pipe.execute()
    return [FollowUp(account_id, source, job_id)
            for (job_id, account_id), waiting in zip(wanted.items(), deferred) if not waiting]
