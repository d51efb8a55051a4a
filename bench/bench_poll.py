"""6. A poll cycle against the simulator at Mastodon's default rate: accounts analysed per minute.

Mastodon allows 300 requests per 5 minutes per token (1 per second). The simulator runs that
rate in a scaled window (LIMIT per PERIOD seconds, the same 1 request per second) so a run sees
the budget run out and reset more than once within a couple of minutes. A real forking worker
drains the poll and the analysis jobs it creates; a 429 must lead to a rescheduled analysis
after the reset (`flows._retry_later and the shared rate-limit gate (moderation/ratelimit.py)`), never to a lost account. The baseline is the
budget itself: how many accounts per minute the rate limit permits, after the poll's own pages.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from common import Row, child_env, flush, free_port, python, redis_client, stop, use_env, wait_http
from modwatch.simulator.server import running

ACCOUNTS = 400
LIMIT = 30
PERIOD = 30
WINDOWS = 3  # measured from a window's start to a window's end, so every window counted is whole
TARGET = 0.8  # of the accounts per minute the rate limit permits


def metric(text: str, name: str) -> float:
    return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE))


def wait_for_window_start(period: int) -> float:
    """Sleep until the simulator's next rate-limit window opens (windows are aligned to the epoch)."""
    time.sleep(period - time.time() % period)
    return time.time()


def run(windows: int = WINDOWS) -> list[Row]:
    flush()
    with running(accounts=ACCOUNTS, seed=5, ratelimit_limit=LIMIT, ratelimit_period=PERIOD) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        env = child_env(Path(tmp), INSTANCE_BASE=sim.base_url, MASTODON_ACCESS_TOKEN="sim-admin-token",
                        DRY_RUN="true", POLL_MAX_PAGES="10", LOG_LEVEL="WARNING")
        use_env(env)
        from modwatch.jobs import tasks
        from modwatch.jobs.enqueue import enqueue
        from modwatch.storage.db import session_scope, upgrade_database
        from modwatch.storage.models import AccountAnalysis
        from sqlalchemy import func, select

        upgrade_database()
        port = free_port()
        log = open(Path(tmp) / "worker.log", "w")
        worker = subprocess.Popen(python("-m", "modwatch.cli", "worker", "moderation", "--metrics-port", str(port)),
                                  env=env, stdout=log, stderr=log)
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics", worker)
            started_at = wait_for_window_start(PERIOD)
            started = time.monotonic()
            enqueue(tasks.poll_admin_accounts)
            enqueue(tasks.poll_admin_accounts_local)
            time.sleep(windows * PERIOD - (time.time() - started_at) - 0.5)  # end inside the last window
            elapsed = time.monotonic() - started
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            stop(worker)
        connection = redis_client()
        queue = Queue("moderation", connection=connection)
        waiting = Job.fetch_many(queue.get_job_ids() + ScheduledJobRegistry(queue=queue).get_job_ids()
                                 + StartedJobRegistry(queue=queue).get_job_ids(), connection=connection)
        pending = {str(job.args[0]) for job in waiting if job is not None and job.func_name.endswith("analyze_and_maybe_report")}
        failed = FailedJobRegistry(queue=queue).count
        with session_scope() as session:
            analysed = set(session.scalars(select(AccountAnalysis.account_id).distinct()))
            analyses = session.scalar(select(func.count(AccountAnalysis.id)))
        listed = {key.decode().split("-")[1] for key in connection.scan_iter("rq:job:analyze-*")}
    flush()
    requests_made = metric(scraped, "modwatch_mastodon_requests_total")
    rate_limited = metric(scraped, "modwatch_mastodon_rate_limited_total")
    page_requests = sum(float(v) for v in re.findall(
        r'^modwatch_mastodon_requests_total{[^}]*endpoint="/api/v2/admin/accounts"[^}]*} ([0-9.e+]+)$', scraped, re.MULTILINE))
    # Accounts neither analysed nor waiting for a rescheduled analysis: what a 429 would have lost.
    unanswered = len(listed - analysed - pending)
    per_minute = len(analysed) / elapsed * 60
    # Fixed windows: each of the whole windows the run spanned grants LIMIT requests.
    windows = int((started_at + elapsed) // PERIOD) - int(started_at // PERIOD) + 1
    budget = (LIMIT * windows - page_requests) / elapsed * 60
    ratio = per_minute / budget
    return [Row(
        f"6. poll cycle, {ACCOUNTS} accounts, {LIMIT} req/{PERIOD} s (= 300/5 min), {elapsed:.0f} s",
        f"{per_minute:.0f} accounts/min analysed", f"{budget:.0f} accounts/min permitted by the rate limit",
        ratio, f">= {TARGET}, 0 unanswered 429s", ratio >= TARGET and unanswered == 0 and failed == 0,
        [f"poll: {requests_made:.0f} Mastodon requests ({page_requests:.0f} account pages), {rate_limited:.0f} answered "
         f"429, {failed} failed jobs, {len(analysed)} accounts analysed ({analyses} analyses), {len(pending)} waiting "
         f"for a rescheduled analysis, {unanswered} accounts lost"],
    )]
