"""Fixtures for the fault drills: Redis database 7, environments for real modwatch processes."""

from __future__ import annotations

import os

import pytest
import redis

from faults.support import API_KEY, HERE, REDIS_URL, WEBHOOK_SECRET, PrivateRedis, reset_caches


@pytest.fixture
def fault_env(monkeypatch, tmp_path) -> dict[str, str]:
    """The environment of this test and of every process it starts (faultjobs importable)."""
    values = {
        "REDIS_URL": REDIS_URL,
        "API_KEY": API_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path}/modwatch.db",
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("INSTANCE_BASE", "MASTODON_ACCESS_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT", "DRY_RUN", "PANIC_STOP"):
        monkeypatch.delenv(name, raising=False)
    reset_caches()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield dict(os.environ)
    client.flushdb()
    reset_caches()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()
