"""Fixtures for the service core: a real Redis database of our own, real worker processes."""

from __future__ import annotations

import pytest
import redis

from core.support import API_KEY, REDIS_URL, WEBHOOK_SECRET, reset_caches


@pytest.fixture
def core_env(monkeypatch, tmp_path):
    env = {
        "REDIS_URL": REDIS_URL,
        "API_KEY": API_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path}/modwatch.db",
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("INSTANCE_BASE", "MASTODON_ACCESS_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    reset_caches()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield env
    client.flushdb()
    reset_caches()


@pytest.fixture
def client(core_env):
    from fastapi.testclient import TestClient

    from modwatch.api.app import create_app
    from modwatch.storage.db import upgrade_database

    upgrade_database()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def auth():
    return {"X-API-Key": API_KEY}

