"""Analysing streamed posts in batches, from the stream's own payload: no Mastodon request.

A streamed post carries its author's Account. Each account's recent posts seen on the stream are
kept in a `Window` (what the rules read of them, newest first, bounded), so the rules see an
account with its recent posts, as an analysis fetched over the API would, without asking for them.
A batch groups its posts by account and scores each account once, all of them in one call
(`analysis.score_many`: one round trip to the shared wave index per batch, so a wave is seen across the
stream, webhooks and polls; accounts a wave completed are scored again from their window, in a second
one). Every post's decision is recorded, with the batch and trace that made it, in one transaction
with the stream cursors; a post is analysed once per version (`status.update` is a new version) and
a `delete` retracts it.

Accounts that reach the threshold are handed to `report` (the caller's: it starts the report job,
at most one per account), which files through the exactly-once report path.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import select, tuple_, update

from modwatch.moderation import runtime
from modwatch.moderation.analysis import RECENT_STATUSES, current_rules, public_account, score_many
from modwatch.moderation.detectors import timestamp
from modwatch.settings import Settings
from modwatch.storage.db import insert_new, session_scope
from modwatch.storage.models import StreamCursor, StreamPost
from modwatch.telemetry.metrics import STREAM_POSTS

# What the rules read of a status; the rest (the author above all) is not kept in the window.
KEPT_FIELDS = ("id", "created_at", "edited_at", "content", "spoiler_text", "card", "media_attachments", "mentions",
               "tags", "visibility", "language", "in_reply_to_id", "sensitive", "poll", "url")
WINDOW_ACCOUNTS = 50_000
SEEN_CAPACITY = 500_000
# The caller's report starter: (account, its recent statuses) -> the job id, or None when the
# account already has a report under way.
ReportStarter = Callable[[dict[str, Any], list[dict[str, Any]]], "str | None"]


@dataclass
class Received:
    """A post as it arrived: from the stream (`update`, `status.update`) or a gap fill."""

    stream: str
    event: str
    status: dict[str, Any]
    received_at: float = field(default_factory=time.time)
    via: str = "stream"

    @property
    def key(self) -> tuple[str, str]:
        return str(self.status.get("id")), version_of(self.status)


@dataclass
class Deleted:
    stream: str
    status_id: str
    received_at: float = field(default_factory=time.time)


def version_of(status: dict[str, Any]) -> str:
    return str(status.get("edited_at") or "")


def trim(status: dict[str, Any]) -> dict[str, Any]:
    return {name: status[name] for name in KEPT_FIELDS if name in status}


class Window:
    """Each account's recent posts seen on the stream; the accounts not heard of longest are dropped."""

    def __init__(self, posts_per_account: int = RECENT_STATUSES, accounts: int = WINDOW_ACCOUNTS) -> None:
        self.posts_per_account = posts_per_account
        self.capacity = accounts
        self._accounts: OrderedDict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = OrderedDict()
        self._owner: dict[str, str] = {}

    def add(self, account: dict[str, Any], status: dict[str, Any]) -> None:
        account_id, status_id = str(account["id"]), str(status["id"])
        _, posts = self._accounts.pop(account_id, (None, {}))
        posts[status_id] = trim(status)  # an edit replaces the post in place
        while len(posts) > self.posts_per_account:
            oldest = min(posts, key=int)
            del posts[oldest]
            self._owner.pop(oldest, None)
        self._accounts[account_id] = (account, posts)  # the account as of its latest post
        self._owner[status_id] = account_id
        while len(self._accounts) > self.capacity:
            _, (_, dropped) = self._accounts.popitem(last=False)
            for gone in dropped:
                self._owner.pop(gone, None)

    def remove(self, status_id: str) -> str | None:
        """Forget a deleted post; its author's id, when the post was known."""
        account_id = self._owner.pop(status_id, None)
        if account_id is not None and account_id in self._accounts:
            self._accounts[account_id][1].pop(status_id, None)
        return account_id

    def __contains__(self, account_id: str) -> bool:
        return account_id in self._accounts

    def account(self, account_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        account, posts = self._accounts[account_id]
        return account, [posts[i] for i in sorted(posts, key=int, reverse=True)]


class Seen:
    """(status id, version) keys decided lately, oldest forgotten first."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def add(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self._keys[key] = None
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


@dataclass
class Outcome:
    decided: list[Received]
    decisions: dict[str, int]
    reported: dict[str, str]  # account id -> report job id
    deleted: int = 0
    duplicates: int = 0


def analyse_batch(items: list[Received | Deleted], window: Window, seen: Seen, settings: Settings,
                  report: ReportStarter, batch_id: str, trace_id: str | None,
                  cursors: dict[str, str] | None = None) -> Outcome:
    """Decide every new post of the batch, record the decisions and `cursors`, apply deletes."""
    fresh, deleted_ids, duplicates = _fresh(items, seen)
    touched: dict[str, None] = {}
    for item in fresh:
        account = public_account(item.status["account"])  # _fresh kept only posts with an account
        window.add(account, item.status)
        touched[str(account["id"])] = None
    for status_id in deleted_ids:
        author = window.remove(status_id)
        if author is not None and author in touched:
            touched[author] = None  # its other posts in this batch are decided without the deleted one

    rules = current_rules(settings)
    switches = runtime.current(settings)
    verdicts: dict[str, tuple[float, list[str], bool]] = {}
    reported: dict[str, str] = {}
    now = datetime.now(timezone.utc)

    def judge(account_ids: list[str], record: bool) -> dict[str, None]:
        """Score the accounts from their windows, together (one wave-index round trip); the members
        of the waves they completed."""
        material = [window.account(account_id) for account_id in account_ids]
        # Through the shared wave index: a wave is seen across the stream, webhooks and polls alike.
        scored = score_many(material, settings, switches, record=record, now=now, rules=rules)
        completed: dict[str, None] = {}
        for account_id, (account, statuses), verdict in zip(account_ids, material, scored):
            verdicts[account_id] = (verdict.analysis.score, verdict.analysis.rule_names, verdict.reportable)
            if verdict.reportable:
                job_id = report(account, statuses)
                if job_id is not None:
                    reported[account_id] = job_id
            completed.update(dict.fromkeys(verdict.wave_members))
        return completed

    completed = judge(list(touched), record=True)
    # Accounts scored before the wave they belong to existed: scored again from their window now.
    second_look = [m for m in completed if m in window and m not in touched]
    if second_look:
        judge(second_look, record=False)

    decided_at = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for item in fresh:
        account_id = str(item.status["account"]["id"])
        points, names, reportable = verdicts[account_id]
        decision = ("reported" if account_id in reported else "already_reported") if reportable else (
            "flagged" if names else "clean")
        counts[decision] = counts.get(decision, 0) + 1
        rows.append(dict(
            status_id=item.key[0], version=item.key[1], account_id=account_id, stream=item.stream, via=item.via,
            posted_at=timestamp(item.status.get("created_at")),
            received_at=datetime.fromtimestamp(item.received_at, timezone.utc), decided_at=decided_at, score=points,
            rule_names=names, decision=decision, batch_id=batch_id, trace_id=trace_id, job_id=reported.get(account_id),
        ))
    _record(rows, deleted_ids, cursors or {}, decided_at)
    seen.add(item.key for item in fresh)
    for decision, count in counts.items():
        STREAM_POSTS.labels(decision=decision).inc(count)
    if duplicates:
        STREAM_POSTS.labels(decision="duplicate").inc(duplicates)
    if deleted_ids:
        STREAM_POSTS.labels(decision="deleted").inc(len(deleted_ids))
    return Outcome(fresh, counts, reported, len(deleted_ids), duplicates)


def _fresh(items: list[Received | Deleted], seen: Seen) -> tuple[list[Received], list[str], int]:
    """The posts not decided before (in this batch, lately, or, for gap fills, ever) and the deletes."""
    fresh: dict[tuple[str, str], Received] = {}
    deleted: list[str] = []
    duplicates = 0
    for item in items:
        if isinstance(item, Deleted):
            deleted.append(item.status_id)
            fresh = {key: post for key, post in fresh.items() if key[0] != item.status_id}
            continue
        account = item.status.get("account")
        if not isinstance(account, dict) or not str(account.get("id", "")).isdigit() or item.status.get("id") is None:
            continue
        if item.key in seen or item.key in fresh:
            duplicates += 1
            continue
        fresh[item.key] = item
    # A gap fill overlaps what a consumer before a takeover decided: those are in the database only.
    filled = [key for key, item in fresh.items() if item.via != "stream"]
    if filled:
        with session_scope() as session:
            known = set(session.execute(select(StreamPost.status_id, StreamPost.version)
                                        .where(tuple_(StreamPost.status_id, StreamPost.version).in_(filled))).all())
        for status_id, version in known:
            del fresh[(status_id, version)]
        duplicates += len(known)
    return list(fresh.values()), deleted, duplicates


def _record(rows: list[dict[str, Any]], deleted_ids: list[str], cursors: dict[str, str], at: datetime) -> None:
    with session_scope() as session:
        if rows:
            # Another consumer may have decided some of them since _fresh looked (a takeover race): theirs stay.
            insert_new(session, StreamPost, rows, ("status_id", "version"))
        if deleted_ids:
            session.execute(update(StreamPost).where(StreamPost.status_id.in_(deleted_ids),
                                                     StreamPost.deleted_at.is_(None)).values(deleted_at=at))
        for stream, status_id in cursors.items():
            _advance(session, stream, status_id)


def _advance(session, stream: str, status_id: str) -> None:
    cursor = session.get(StreamCursor, stream)
    if cursor is None:
        session.add(StreamCursor(stream=stream, last_status_id=status_id))
    elif cursor.last_status_id is None or int(status_id) > int(cursor.last_status_id):
        cursor.last_status_id = status_id


def save_cursor(stream: str, status_id: str) -> None:
    """Move the stream's cursor forward to `status_id` (never back)."""
    with session_scope() as session:
        _advance(session, stream, status_id)


def last_status_id(stream: str) -> str | None:
    """Where the stream's recorded decisions end: the gap fill's `min_id`."""
    with session_scope() as session:
        cursor = session.get(StreamCursor, stream)
        return cursor.last_status_id if cursor else None


def decision_of(status_id: str) -> list[dict[str, Any]]:
    """Every recorded version of a post's decision, oldest first."""
    with session_scope() as session:
        rows = session.scalars(select(StreamPost).where(StreamPost.status_id == status_id).order_by(StreamPost.id)).all()
        return [{column.name: getattr(row, column.name) for column in StreamPost.__table__.columns} for row in rows]
