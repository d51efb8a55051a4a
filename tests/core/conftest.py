"""Fixtures for the service core: a real Redis database of our own, real worker processes."""

from __future__ import annotations

import pytest
import redis

from core.support import API_KEY, REDIS_URL, WEBHOOK_SECRET, reset_caches
from modwatch.storage.db import upgrade_database


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
    upgrade_database()
    yield env
    client.flushdb()
    reset_caches()


@pytest.fixture
def client(core_env):
    from fastapi.testclient import TestClient

    from modwatch.api.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def auth():
    return {"X-API-Key": API_KEY}



@pytest.fixture
def simulator(core_env, monkeypatch):
    """A real Mastodon API simulator over HTTP; worker subprocesses inherit INSTANCE_BASE and the token."""
    from modwatch.simulator.server import running
    from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN

    with running() as sim:
        monkeypatch.setenv("INSTANCE_BASE", sim.base_url)
        monkeypatch.setenv("MASTODON_ACCESS_TOKEN", DEFAULT_ADMIN_TOKEN)
        reset_caches()
        yield sim
