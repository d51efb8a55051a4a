"""Fixtures every test area uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from isolation import NOT_INHERITED, claimed_redis_db, reset_caches

# Test modules that start real processes (workers, schedulers, servers, Prometheus) or wait on them:
# marked `slow` here, in one place, so `pytest -m "not slow"` is a quick run and `-m slow` the rest.
SLOW_MODULES = {
    "core/test_run.py", "core/test_scheduler.py", "core/test_worker.py", "core/test_heap.py", "core/test_ports.py",
    "faults/test_workers.py", "faults/test_mastodon_faults.py", "faults/test_hostile_clients.py",
    "metrics/test_job_metrics.py", "moderation/test_moderation_killed_worker.py",
    "moderation/test_spam_wave_drill.py", "oncall/test_e2e_prometheus.py", "stream/test_stream_consumer.py",
    "tracing/test_cross_process.py", "oncall/test_drills.py", "faults/test_secrets.py", "faults/test_intake.py",
}
# A module renamed or moved would silently lose its marker and slow the quick run down.
if missing := sorted(name for name in SLOW_MODULES if not (Path(__file__).parent / name).is_file()):
    raise pytest.UsageError(f"tests/conftest.py SLOW_MODULES names modules that do not exist: {missing}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/".join(item.path.parts[-2:]) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


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
        databases.append(claimed_redis_db(redis_url))
        return env

    yield isolate
    for database in databases:
        database.flushdb()
    reset_caches()
