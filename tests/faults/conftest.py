"""Fixtures for the fault drills: Redis database 7, environments for real modwatch processes."""

from __future__ import annotations

import os

import pytest

from faults.support import API_KEY, HERE, REDIS_URL, WEBHOOK_SECRET, PrivateRedis


@pytest.fixture
def fault_env(modwatch_env) -> dict[str, str]:
    """The environment of this test and of every process it starts (faultjobs importable)."""
    modwatch_env(REDIS_URL, API_KEY=API_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET,
                 PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    return dict(os.environ)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()
