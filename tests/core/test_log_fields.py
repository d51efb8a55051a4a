"""Log lines name their component, and a recurring job's run writes no line saying its result is kept."""

from __future__ import annotations

import json
import subprocess
import sys

from core.support import subprocess_env


def test_every_line_names_its_service_and_kept_results_are_not_logged(core_env, tmp_path):
    from modwatch.jobs.queues import get_queue

    get_queue("monitoring").enqueue("modwatch.jobs.monitoring.record_queue_stats", result_ttl=-1)
    env = subprocess_env({"LOG_FORMAT": "json", "METRICS_PORT": "0"})
    run = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "monitoring", "--burst"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") for line in lines), "the job wrote no line"
    assert {line.get("service") for line in lines} == {"modwatch-worker"}
    assert not [line for line in lines if "result will never expire" in line["event"]]
