"""Fixtures for the service core: a real Redis database of our own, real worker processes."""

from __future__ import annotations

import pytest

from isolation import reset_caches
from core.support import API_KEY, REDIS_URL, WEBHOOK_SECRET
from modwatch.storage.db import upgrade_database


@pytest.fixture
def core_env(modwatch_env):
    env = modwatch_env(REDIS_URL, API_KEY=API_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET)
    upgrade_database()
    return env


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
