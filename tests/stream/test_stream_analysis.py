"""Batch analysis of streamed posts, in process: the window, duplicates, edits, deletes, gap fills, cursors."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from isolation import postgres_schema, redis_db_url
from modwatch.moderation.stream_analysis import Deleted, Received, Seen, Window, analyse_batch, last_status_id
from modwatch.settings import get_settings
from modwatch.storage.db import session_scope, upgrade_database
from modwatch.storage.models import StreamPost

SPAM = "Huge crypto giveaway! Claim at https://bit.ly/abc and join t.me/freecoins, whatsapp me"


def account(account_id: str, acct: str = "someone@remote.example") -> dict:
    return {"id": account_id, "acct": acct, "username": acct.split("@")[0], "display_name": "Someone",
            "note": "<p>Birds and maps.</p>", "created_at": "2020-01-01T00:00:00.000Z", "statuses_count": 100,
            "fields": [], "avatar": "https://remote.example/a.png"}


def status(status_id: str, author: dict, text: str = "Morning walk by the river.", edited_at: str | None = None) -> dict:
    return {"id": status_id, "created_at": "2026-12-06T22:00:00.000Z", "edited_at": edited_at, "account": author,
            "content": f"<p>{text}</p>", "spoiler_text": "", "visibility": "public", "media_attachments": [],
            "mentions": [], "tags": []}


SCHEMA = "modwatch_stream_test"


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, modwatch_env):
    """Both databases modwatch supports (PostgreSQL in a schema of its own)."""
    if request.param == "sqlite":
        modwatch_env(redis_db_url(14))
        upgrade_database()
        yield
        return
    with postgres_schema(SCHEMA) as url:
        modwatch_env(redis_db_url(14), DATABASE_URL=url())
        upgrade_database()
        yield


def rows() -> list[tuple[str, str, str, str | None]]:
    with session_scope() as session:
        return [tuple(r) for r in session.execute(
            select(StreamPost.status_id, StreamPost.version, StreamPost.decision, StreamPost.deleted_at)
            .order_by(StreamPost.id)).all()]


def test_window_keeps_each_accounts_newest_posts_and_the_latest_accounts():
    window = Window(posts_per_account=3, accounts=2)
    author = account("1")
    for status_id in ("10", "11", "12", "13"):
        window.add(author, status(status_id, author))
    assert [s["id"] for s in window.account("1")[1]] == ["13", "12", "11"]
    assert "account" not in window.account("1")[1][0]  # the author is kept once, not per post
    window.add(account("2"), status("20", account("2")))
    window.add(account("3"), status("30", account("3")))
    assert "1" not in window and "2" in window and "3" in window
    assert window.remove("30") == "3" and window.account("3")[1] == []
    assert window.remove("10") is None  # forgotten with its account


def test_batch_decides_each_version_once_applies_deletes_and_moves_the_cursor(env):
    window, seen, started = Window(), Seen(), []
    spammer, person = account("1", "deals@spam.example"), account("2")

    def report(acct: dict, statuses: list[dict]) -> str | None:
        started.append((acct["id"], [s["id"] for s in statuses]))
        return f"job-{acct['id']}"

    first = [Received("public:remote", "update", status("100", spammer, SPAM)),
             Received("public:remote", "update", status("101", person)),
             Received("public:remote", "update", status("101", person))]  # the same event twice
    outcome = analyse_batch(first, window, seen, get_settings(), report, "batch-1", "a" * 32, {"public:remote": "101"})
    assert outcome.duplicates == 1 and len(outcome.decided) == 2
    assert started == [("1", ["100"])] and outcome.reported == {"1": "job-1"}
    assert rows() == [("100", "", "reported", None), ("101", "", "clean", None)]

    edited = status("101", person, "Morning walk, edited.", edited_at="2026-12-06T22:05:00.000Z")
    second = [Received("public:remote", "status.update", edited),
              Received("public:remote", "update", status("100", spammer, SPAM)),  # seen: not again
              Deleted("public:remote", "100"),
              Received("public:remote", "update", status("102", person), via="gap_fill")]
    outcome = analyse_batch(second, window, seen, get_settings(), report, "batch-2", None, {"public:remote": "102"})
    assert outcome.duplicates == 1 and outcome.deleted == 1
    decided = rows()
    assert [(r[0], r[1]) for r in decided] == [("100", ""), ("101", ""), ("101", "2026-12-06T22:05:00.000Z"),
                                               ("102", "")]
    assert decided[0][3] is not None and all(r[3] is None for r in decided[1:])
    assert last_status_id("public:remote") == "102"
    # A gap fill reaching back over posts a predecessor decided decides nothing twice, even with a fresh memory.
    again = [Received("public:remote", "update", status("102", person), via="gap_fill")]
    outcome = analyse_batch(again, Window(), Seen(), get_settings(), report, "batch-3", None, {"public:remote": "101"})
    assert outcome.decided == [] and outcome.duplicates == 1
    assert last_status_id("public:remote") == "102"  # a cursor never moves back


def test_a_row_another_consumer_recorded_meanwhile_is_kept_and_the_rest_added(env):
    """The takeover race: a predecessor recorded a post after our duplicate check; its row stays, ours is dropped."""
    from datetime import datetime, timezone

    from modwatch.moderation.stream_analysis import _record

    now = datetime.now(timezone.utc)

    def row(status_id: str, decision: str) -> dict:
        return dict(status_id=status_id, version="", account_id="1", stream="public:remote", via="stream",
                    posted_at=now, received_at=now, decided_at=now, score=0.0, rule_names=[], decision=decision,
                    batch_id="b", trace_id=None, job_id=None)

    _record([row("500", "theirs")], [], {}, now)
    _record([row("500", "ours"), row("501", "ours")], [], {"public:remote": "501"}, now)
    assert [(r[0], r[2]) for r in rows()] == [("500", "theirs"), ("501", "ours")]
    assert last_status_id("public:remote") == "501"
