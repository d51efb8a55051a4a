"""A real `modwatch worker` killed with SIGKILL while it files a report: the report exists once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from isolation import wait_for
from modwatch.jobs import tasks
from modwatch.jobs.enqueue import enqueue
from modwatch.mastodon.client import MastodonClient
from modwatch.moderation import reports
from modwatch.storage.db import session_scope
from modwatch.storage.models import Report
from tests.moderation.conftest import run_jobs


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the worker's forked work horse)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def claimed_row() -> Report | None:
    with session_scope() as session:
        return session.scalar(select(Report).where(Report.attempts >= 1))


def test_worker_killed_while_filing_leaves_exactly_one_report(world):
    spammer = world.add_spammer()
    reports.sync_report_budget(MastodonClient.from_settings(world.settings))  # only the POST is slow below
    enqueue(tasks.analyze_and_maybe_report, spammer, "manual")
    # Every answer now takes 3 s: the worker will be inside POST /api/v1/reports when it dies.
    world.faults(latency_ms=3000)
    worker = subprocess.Popen(
        [sys.executable, "-m", "modwatch.cli", "worker", "moderation", "--metrics-port", "0"],
        env={**os.environ, **world.env, "LOG_LEVEL": "WARNING"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(claimed_row, "the worker to claim the report")
        time.sleep(1)  # the POST is on its way; the simulator answers only after 3 s
    finally:
        # The work horse first (RQ puts it in its own process group), then the worker.
        for pid in [*children(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
    # The request reached Mastodon before the worker died: the simulator files it anyway.
    wait_for(lambda: world.filed(spammer), "the in-flight report to land")
    world.faults(latency_ms=0)
    assert claimed_row().state == "pending"  # modwatch never heard back

    assert claimed_row().doubt_since is not None  # written before the POST: the next attempt looks first

    # Another analysis finds the decision made; the filer leaves a claimed row alone.
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "duplicate"
    assert tasks.file_pending_reports()["reports"] == {}
    # Once the claim lapses (here: moved into the past), the filer looks, finds the report and adopts it.
    with session_scope() as session:
        session.execute(update(Report).values(claimed_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert tasks.file_pending_reports()["reports"] == {"filed": 1}
    run_jobs()
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "duplicate"

    [report] = world.filed(spammer)
    row = claimed_row()
    assert row.state == "filed" and row.mastodon_report_id == str(report["id"])
    assert len(world.requests.params("POST", "/api/v1/reports")) == 1
