"""Mastodon answering 429, 503 and timing out: a real `modwatch worker` against the simulator's faults.

Each drill triggers `analyze_and_maybe_report` for a spam account, lets the first attempts fail,
checks how the job comes back (a fresh job at a slot after the rate-limit reset for a 429, RQ's
backoff retry for a 503 or a timeout), clears the faults and checks that the simulator holds
exactly one report. Redis database 10; the simulator's rate-limit window is 2 s, so a reset is
never far away.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone

import pytest
import redis
import requests
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from faults.support import modwatch, stop

from isolation import reset_caches, wait_for
from modwatch.jobs import tasks
from modwatch.jobs.enqueue import enqueue
from modwatch.jobs.queues import MODERATION, get_queue
from modwatch.mastodon.client import MastodonClient
from modwatch.moderation import reports
from modwatch.redis_keys import RATELIMIT_GATE_KEY
from modwatch.settings import get_settings
from modwatch.simulator import server
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN
from modwatch.storage.db import session_scope, upgrade_database
from modwatch.storage.models import Report
from isolation import claimed_redis_db, redis_db_url

REDIS_URL = redis_db_url(10)
SEED = 15  # its first two fault draws are 0.965 then 0.012: see the timeout drill
SPAM_TEXT = ("Huge crypto giveaway! Send 0.1 BTC to bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh "
             "and whatsapp me for guaranteed returns")
NO_FAULTS = {"error_ratio": 0, "ratelimit_ratio": 0, "timeout_ratio": 0}


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    """The simulator, a migrated database and one `modwatch worker moderation`, shared by the drills."""
    tmp = tmp_path_factory.mktemp("mastodon_faults")
    sim = server.start_in_thread(accounts=0, seed=SEED, ratelimit_limit=100_000, ratelimit_period=2,
                                 paging_limit=100_000)
    with pytest.MonkeyPatch.context() as patch:
        env = {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": f"sqlite:///{tmp}/modwatch.db",
            "INSTANCE_BASE": sim.base_url,
            "MASTODON_ACCESS_TOKEN": DEFAULT_ADMIN_TOKEN,
            "API_KEY": "mastodon-faults-key",
            "DRY_RUN": "false",
            "PANIC_STOP": "false",
            "METRICS_PORT": "0",
            "LOG_FORMAT": "json",
        }
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
        reset_caches()
        connection = claimed_redis_db(REDIS_URL)
        upgrade_database()
        worker = modwatch("worker", MODERATION, env=dict(os.environ), log=tmp / "worker.log")
        try:
            wait_for(lambda: connection.keys("rq:worker:*"), "the worker to register", 60)
            yield Drill(sim, connection)
        finally:
            stop(worker)
            sim.stop()
            connection.flushdb()
            reset_caches()


class Drill:
    def __init__(self, sim: server.RunningSimulator, connection: redis.Redis):
        self.sim = sim
        self.redis = connection

    def sim_post(self, path: str, body: dict) -> dict:
        response = requests.post(f"{self.sim.base_url}/_sim/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_spammer(self, username: str) -> str:
        account = self.sim_post("accounts", {"username": username, "domain": "spam.example"})
        for text in (SPAM_TEXT, "Another crypto giveaway today, whatsapp me"):
            self.sim_post("statuses", {"account_id": account["id"], "text": text})
        return account["id"]

    def faults(self, **changes) -> None:
        """Set faults; the simulator restarts its draw sequence from the seed."""
        self.sim_post("faults", {**NO_FAULTS, "timeout_seconds": 15, **changes})

    def filed(self, account_id: str) -> list[dict]:
        reports = requests.get(f"{self.sim.base_url}/_sim/reports", timeout=10).json()
        return [r for r in reports if r["target_account"]["id"] == account_id]

    def ended(self, job_id: str, timeout: float = 60) -> Job:
        """The job once it ran to the end (its result is kept), waiting for it."""
        ended = (JobStatus.FINISHED, JobStatus.FAILED)
        wait_for(lambda: Job.fetch(job_id, connection=self.redis).get_status() in ended, f"job {job_id} to end", timeout)
        return Job.fetch(job_id, connection=self.redis)

    def failed_attempt(self, job: Job, retries_left: int) -> datetime:
        """Wait until the job failed an attempt and RQ scheduled its retry; the retry's time."""
        registry = get_queue(MODERATION).scheduled_job_registry

        def scheduled() -> bool:
            job.refresh()
            return job.retries_left == retries_left and job.id in registry.get_job_ids()

        wait_for(scheduled, f"job {job.id} to be scheduled for a retry with {retries_left} retries left", 60)
        return registry.get_scheduled_time(job.id)

    def run_now(self, job: Job) -> None:
        """Bring a scheduled retry forward rather than wait out RQ's backoff (10 s, then 30 s)."""
        get_queue(MODERATION).scheduled_job_registry.schedule(job, datetime.now(timezone.utc))

    def idle(self) -> bool:
        queue = get_queue(MODERATION)
        return (queue.count == 0 and queue.scheduled_job_registry.count == 0
                and queue.started_job_registry.count == 0)


@pytest.fixture
def mastodon(drill):
    drill.faults()
    drill.redis.delete(RATELIMIT_GATE_KEY)
    yield drill
    drill.faults()


def report_rows(account_id: str) -> list[Report]:
    with session_scope() as session:
        return list(session.scalars(select(Report).where(Report.account_id == account_id)))


def test_429_reschedules_the_analysis_after_the_reset_until_it_files_one_report(mastodon):
    spammer = mastodon.add_spammer("ratelimited")
    mastodon.faults(ratelimit_ratio=1)
    first = mastodon.ended(enqueue(tasks.analyze_and_maybe_report, spammer, "manual").id)
    result = first.return_value()
    assert result["outcome"] == "rate_limited"
    reset_at = datetime.fromisoformat(result["reset_at"])
    retry = Job.fetch(result["retry_job_id"], connection=mastodon.redis)
    assert retry.func_name == "modwatch.jobs.tasks.analyze_and_maybe_report" and retry.args == (spammer, "manual")
    assert get_queue(MODERATION).scheduled_job_registry.get_scheduled_time(retry.id) >= reset_at

    # Still limited: the retry runs after the reset, meets a 429 and schedules the next one.
    retry = mastodon.ended(retry.id)
    again = retry.return_value()
    assert retry.started_at.replace(tzinfo=timezone.utc) >= reset_at
    assert again["outcome"] == "rate_limited" and again["retry_job_id"] != retry.id
    assert mastodon.filed(spammer) == []

    mastodon.faults()
    outcomes = [again]
    while outcomes[-1]["outcome"] == "rate_limited":
        outcomes.append(mastodon.ended(outcomes[-1]["retry_job_id"]).return_value())
    assert outcomes[-1]["outcome"] == "filed"
    wait_for(mastodon.idle, "nothing left to run")
    assert len(mastodon.filed(spammer)) == 1
    assert [row.state for row in report_rows(spammer)] == ["filed"]


def test_503_is_retried_with_backoff_and_files_one_report(mastodon):
    spammer = mastodon.add_spammer("unavailable")
    mastodon.faults(error_ratio=1)
    job = enqueue(tasks.analyze_and_maybe_report, spammer, "manual")
    retries = job.retries_left

    first_retry_at = mastodon.failed_attempt(job, retries - 1)
    assert first_retry_at.timestamp() > time.time()  # a backoff, not an immediate rerun
    mastodon.run_now(job)
    second_retry_at = mastodon.failed_attempt(job, retries - 2)
    assert second_retry_at > first_retry_at
    assert mastodon.filed(spammer) == []

    mastodon.faults()
    mastodon.run_now(job)
    job = mastodon.ended(job.id)
    assert job.get_status() == JobStatus.FINISHED and job.return_value()["outcome"] == "filed"
    wait_for(mastodon.idle, "nothing left to run")
    assert len(mastodon.filed(spammer)) == 1
    assert [row.state for row in report_rows(spammer)] == ["filed"]


def test_a_report_post_that_times_out_after_reaching_mastodon_is_not_filed_twice(mastodon):
    # The simulator draws one fault per request from its seed: with the ratio between the first two
    # draws, the first request (the statuses) goes through and the second (the report) times out.
    draws = random.Random(SEED)
    statuses_draw, report_draw = draws.random(), draws.random()
    assert report_draw < statuses_draw
    spammer = mastodon.add_spammer("slowpost")
    # The day's report budget is read once a day before the first report; read it now, so the requests
    # below are the statuses and the report.
    reports.sync_report_budget(MastodonClient.from_settings(get_settings()))
    # The client gives up after 10 s; the simulator files the report a second later. The analysis job ends
    # with the decision recorded and in doubt: the filer looks for it before filing anything again.
    mastodon.faults(timeout_ratio=(statuses_draw + report_draw) / 2, timeout_seconds=11)
    job = mastodon.ended(enqueue(tasks.analyze_and_maybe_report, spammer, "manual").id, timeout=90)
    assert job.get_status() == JobStatus.FINISHED and job.return_value()["outcome"] == "waiting"
    mastodon.faults()
    wait_for(lambda: mastodon.filed(spammer), "the timed-out POST to be filed by the simulator")
    [row] = report_rows(spammer)
    assert row.state == "pending" and row.doubt_since is not None

    # Its first look is due (here: brought forward): the report is found and adopted, not filed again.
    with session_scope() as session:
        session.execute(update(Report).values(not_before=datetime.now(timezone.utc)))
    assert tasks.file_pending_reports()["reports"] == {"filed": 1}
    wait_for(mastodon.idle, "nothing left to run")
    filed = mastodon.filed(spammer)
    assert len(filed) == 1
    [row] = report_rows(spammer)
    assert (row.state, row.mastodon_report_id, row.attempts) == ("filed", filed[0]["id"], 2)
