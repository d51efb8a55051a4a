"""Constants and helpers for the core tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from isolation import redis_db_url

REDIS_DB = 1
REDIS_URL = redis_db_url(REDIS_DB)
API_KEY = "core-test-api-key"
WEBHOOK_SECRET = "0123456789abcdef0123456789abcdef01234567"  # the shared recordings' test-only secret
REPO = Path(__file__).resolve().parents[2]


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment for a child process, with tests/core importable for test job functions."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    env.update(extra or {})
    return env


def run_worker_burst(*queues: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A real forking worker process that drains the queues and quits."""
    return subprocess.run(
        [sys.executable, "-m", "modwatch.cli", "worker", "--burst", *queues],
        env=subprocess_env(), capture_output=True, text=True, timeout=timeout,
    )
