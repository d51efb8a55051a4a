import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from modwatch.run import free_port


@pytest.fixture
def fresh_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "API_KEY", "WEBHOOK_SECRET", "INSTANCE_BASE",
                          "MASTODON_ACCESS_TOKEN", "METRICS_PORT"}}
    return env


def test_run_with_nothing_configured_starts_everything_and_stops_cleanly(fresh_dir, tmp_path):
    ports = {name: free_port() for name in ("api", "dashboard", "simulator", "worker", "scheduler")}
    closed_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: an embedded Redis must start
    run = subprocess.Popen(
        [sys.executable, "-m", "modwatch.cli", "run", "--port", str(ports["api"]),
         "--dashboard-port", str(ports["dashboard"]), "--simulator-port", str(ports["simulator"]),
         "--worker-metrics-port", str(ports["worker"]), "--scheduler-metrics-port", str(ports["scheduler"]),
         "--redis-probe-url", closed_redis],
        env=fresh_dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = run.stdout.readline()
            if not line:
                break
            banner.append(line)
            if line.startswith("  API key"):
                break
        text = "".join(banner)
        assert "modwatch is running" in text, text
        api_key = re.search(r"^  API key\s+(\S+)$", text, re.MULTILINE).group(1)
        base = f"http://127.0.0.1:{ports['api']}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/jobs/queues", headers={"X-API-Key": api_key}).status_code == 200
        assert "embedded Redis" in text and "Mastodon simulator" in text
        dashboard = f"http://127.0.0.1:{ports['dashboard']}/"
        assert httpx.get(dashboard).status_code == 401
        assert httpx.get(dashboard, auth=("admin", api_key)).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ports['worker']}/metrics").status_code == 200
        assert (tmp_path / "var" / "modwatch.db").exists()
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 6  # redis, simulator, api, worker, scheduler, dashboard
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(timeout=60)
    assert code == 0
    time.sleep(0.5)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
