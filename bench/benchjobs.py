"""Job functions the benchmarks enqueue; workers import them through PYTHONPATH."""

from __future__ import annotations

import os
import sqlite3
import time

import httpx


def noop() -> None:
    return None


def mastodon_and_db(base_url: str, token: str, account_id: str, database: str) -> int:
    """What a moderation job does, at its scale: one Mastodon API call (the simulator, with a
    latency like a real instance's) and one database write, committed. Plain httpx and sqlite3,
    so that bare RQ runs exactly the same function."""
    answer = httpx.get(f"{base_url}/api/v1/accounts/{account_id}/statuses", params={"limit": 40},
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    answer.raise_for_status()
    with sqlite3.connect(database, timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS decisions (account_id TEXT, statuses INTEGER, pid INTEGER, at REAL)")
        db.execute("INSERT INTO decisions VALUES (?, ?, ?, ?)", (account_id, len(answer.json()), os.getpid(), time.time()))
    return len(answer.json())
