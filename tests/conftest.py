"""Fixtures every test area uses."""

from __future__ import annotations

import pytest
import redis

from isolation import NOT_INHERITED, reset_caches


@pytest.fixture
def modwatch_env(monkeypatch, tmp_path):
    """`isolate(redis_url, **settings)`: the test's environment on its own Redis database (flushed
    before and after) and SQLite file; child processes inherit it."""
    databases: list[redis.Redis] = []

    def isolate(redis_url: str, **settings: str) -> dict[str, str]:
        env = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/modwatch.db",
            "METRICS_PORT": "0",
            "LOG_FORMAT": "json",
            **settings,
        }
        for name in NOT_INHERITED:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        database = redis.Redis.from_url(redis_url)
        database.flushdb()
        databases.append(database)
        return env

    yield isolate
    for database in databases:
        database.flushdb()
    reset_caches()
