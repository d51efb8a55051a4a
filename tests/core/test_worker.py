import subprocess
import sys
import time

from core.support import subprocess_env
from modwatch.simulator.server import running
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN


def test_worker_refuses_a_mastodon_without_the_admin_api(core_env):
    with running(version="3.5.9") as sim:
        env = subprocess_env({"INSTANCE_BASE": sim.base_url, "MASTODON_ACCESS_TOKEN": DEFAULT_ADMIN_TOKEN})
        result = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "--burst"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "3.5.9" in result.stderr and "Traceback" not in result.stderr


def test_worker_starts_when_mastodon_is_unreachable(core_env):
    env = subprocess_env({"INSTANCE_BASE": "http://127.0.0.1:1", "MASTODON_ACCESS_TOKEN": "x"})
    result = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "--burst"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mastodon_unreachable_at_start" in result.stderr


def test_healthcheck_worker_follows_the_heartbeat(core_env):
    check = [sys.executable, "-m", "modwatch.cli", "healthcheck", "worker"]
    assert subprocess.run(check, env=subprocess_env(), capture_output=True, timeout=60).returncode == 1
    worker = subprocess.Popen([sys.executable, "-m", "modwatch.cli", "worker"], env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        code = 1
        while code != 0 and time.monotonic() < deadline:
            code = subprocess.run(check, env=subprocess_env(), capture_output=True, timeout=60).returncode
        assert code == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
