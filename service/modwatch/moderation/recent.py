"""The posts Mastodon delivered to us, remembered per account for a while.

A webhook delivers one post; spam accounts post 1-4 times, so the account's other posts are what
make the case. They are kept here, as delivered, rather than fetched: an admin token cannot read
an account's direct or followers-only posts through the API, which is where DM spam lives. An
edit (`status.updated`) replaces its post. Bounded: at most `KEEP` posts per account (the newest
ids), each account's entry expiring `TTL_SECONDS` after its last post.
"""

from __future__ import annotations

import json
from typing import Any

from modwatch.connection import get_redis
from modwatch.redis_keys import RECENT_POSTS_KEY

KEEP = 20
TTL_SECONDS = 3 * 24 * 3600
# The embedded account is kept apart (the freshest one wins); everything else of a status is kept.
_DROPPED = ("account", "reblog", "quote")


def _order(status_id: str) -> int:
    return int(status_id) if status_id.isdigit() else 0


def remember(status: dict[str, Any]) -> None:
    account = embedded if isinstance(embedded := status.get("account"), dict) else {}
    account_id, status_id = str(account.get("id", "")), str(status.get("id", ""))
    if not account_id.isdigit() or not status_id.isdigit():
        return
    key = RECENT_POSTS_KEY.format(account_id=account_id)
    stored = {name: value for name, value in status.items() if name not in _DROPPED}
    connection = get_redis()
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(key, status_id, json.dumps(stored, separators=(",", ":")))
        pipe.expire(key, TTL_SECONDS)
        pipe.hkeys(key)
        ids = pipe.execute()[-1]
    if len(ids) > KEEP:
        oldest = sorted((item.decode() for item in ids), key=_order)[: len(ids) - KEEP]
        connection.hdel(key, *oldest)


def forget(account_id: str, status_id: str) -> None:
    get_redis().hdel(RECENT_POSTS_KEY.format(account_id=account_id), status_id)


def recall(account_id: str) -> list[dict[str, Any]]:
    """The remembered posts of an account, newest first."""
    stored = get_redis().hgetall(RECENT_POSTS_KEY.format(account_id=account_id))
    posts = [json.loads(value) for value in stored.values()]
    return sorted(posts, key=lambda post: _order(str(post.get("id", ""))), reverse=True)


def merged(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statuses from several sources, one per id (an earlier group wins), newest first."""
    by_id: dict[str, dict[str, Any]] = {}
    for group in groups:
        for status in group:
            if isinstance(status, dict):
                by_id.setdefault(str(status.get("id")), status)
    return sorted(by_id.values(), key=lambda status: _order(str(status.get("id", ""))), reverse=True)
