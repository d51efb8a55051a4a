import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import redis
from rq.job import Job
from rq.utils import utcformat

from isolation import reset_caches
from core.support import REDIS_URL, subprocess_env
from modwatch.jobs import scheduler as sched
from modwatch.jobs import tasks
from modwatch.redis_keys import POLL_RUNNING_KEY, SCHEDULER_LEADER_KEY
from modwatch.settings import get_settings


def connection():
    return redis.Redis.from_url(REDIS_URL)


def registered(conn) -> dict[str, int]:
    from rq_scheduler import Scheduler

    return {job.id: job.meta["interval"] for job in Scheduler(connection=conn).get_jobs()}


def test_recurring_jobs_use_configured_intervals(core_env, monkeypatch):
    monkeypatch.setenv("POLL_ADMIN_ACCOUNTS_INTERVAL", "45")
    monkeypatch.setenv("POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL", "50")
    monkeypatch.setenv("QUEUE_STATS_INTERVAL", "3")
    reset_caches()
    leader = sched.LeaderScheduler(get_settings(), connection())
    assert leader._interval <= 3  # the loop runs at least as often as the shortest interval
    assert leader.acquire_lock()
    assert registered(connection()) == {
        "recurring-poll_admin_accounts": 45,
        "recurring-poll_admin_accounts_local": 50,
        "recurring-record_queue_stats": 3,
        "recurring-file_pending_reports": 15,
    }


def test_restart_and_second_scheduler_do_not_duplicate(core_env):
    conn = connection()
    first = sched.LeaderScheduler(get_settings(), conn)
    second = sched.LeaderScheduler(get_settings(), conn)
    assert first.acquire_lock() is True
    assert second.acquire_lock() is False  # one leader
    assert first.acquire_lock() is True  # the leader renews its lease
    first.register_death()
    assert second.acquire_lock() is True  # takes over once the leader is gone
    restarted = sched.LeaderScheduler(get_settings(), conn)
    sched.ensure_recurring(restarted, sched.intervals(get_settings(), conn))
    assert len(registered(conn)) == 4
    assert conn.zcard("rq:scheduler:scheduled_jobs") == 4


def test_changed_interval_replaces_the_job(core_env, monkeypatch):
    conn = connection()
    sched.ensure_recurring(sched.LeaderScheduler(get_settings(), conn), sched.intervals(get_settings(), conn))
    monkeypatch.setenv("QUEUE_STATS_INTERVAL", "99")
    reset_caches()
    sched.ensure_recurring(sched.LeaderScheduler(get_settings(), conn), sched.intervals(get_settings(), conn))
    assert registered(conn)["recurring-record_queue_stats"] == 99
    assert conn.zcard("rq:scheduler:scheduled_jobs") == 4


def test_two_scheduler_processes_run_each_job_once_per_interval(core_env):
    env = subprocess_env({"QUEUE_STATS_INTERVAL": "2", "POLL_ADMIN_ACCOUNTS_INTERVAL": "600",
                          "POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL": "600", "REPORT_FILING_INTERVAL": "600"})
    processes = [subprocess.Popen([sys.executable, "-m", "modwatch.cli", "scheduler"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    conn = connection()
    try:
        deadline = time.monotonic() + 30
        while conn.llen("rq:queue:monitoring") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        # No worker runs: each due run finds the previous one still queued and is coalesced into it.
        time.sleep(5)
        assert conn.lrange("rq:queue:monitoring", 0, -1) == [b"recurring-record_queue_stats"]
        # Taking the run off the queue (as a worker does) lets the next due run in: count them.
        started, stats_runs = time.monotonic(), 0
        while time.monotonic() - started < 9:
            stats_runs += conn.lpop("rq:queue:monitoring") is not None
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        polls = conn.lrange("rq:queue:moderation", 0, -1)
        assert sched.heartbeat_age(conn) < 5
        health = subprocess.run([sys.executable, "-m", "modwatch.cli", "healthcheck", "scheduler"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stdout
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    expected = elapsed / 2
    assert expected - 1.5 <= stats_runs <= expected + 1.5, stats_runs
    assert sorted(polls) == [b"recurring-file_pending_reports", b"recurring-poll_admin_accounts",
                             b"recurring-poll_admin_accounts_local"]
    assert conn.get(SCHEDULER_LEADER_KEY) is None  # released on shutdown


def scheduled(conn) -> dict[str, float]:
    return {key.decode(): score for key, score in conn.zrange("rq:scheduler:scheduled_jobs", 0, -1, withscores=True)}


def test_every_leader_loop_repairs_lost_registrations(core_env):
    """What rq-scheduler and RQ can do to a recurring job, repaired on the next loop without a restart."""
    from modwatch.telemetry.metrics import RECURRING_JOBS, RECURRING_REPAIRS

    conn = connection()
    leader = sched.LeaderScheduler(get_settings(), conn)
    assert leader.acquire_lock()
    stats_key = Job.key_for("recurring-record_queue_stats")
    assert conn.ttl(stats_key) == -1
    job = Job.fetch("recurring-record_queue_stats", connection=conn)
    assert job.result_ttl == -1 and job.failure_ttl == 24 * 3600  # never an expiry after a success

    def repairs(reason: str, function: str = "record_queue_stats") -> float:
        return RECURRING_REPAIRS.labels(function=function, reason=reason)._value.get()

    before = {reason: repairs(reason) for reason in sched.REPAIR_REASONS}
    conn.expire(stats_key, 300)  # a failed run: RQ sets failure_ttl on the hash
    leader.acquire_lock()
    assert conn.ttl(stats_key) == -1 and repairs("expiring") == before["expiring"] + 1

    conn.delete(stats_key)  # the hash expired: rq-scheduler would cancel the job for good
    leader.acquire_lock()
    assert Job.fetch("recurring-record_queue_stats", connection=conn).meta["interval"] == 15
    assert repairs("missing") == before["missing"] + 1

    conn.zrem("rq:scheduler:scheduled_jobs", "recurring-poll_admin_accounts")  # cancelled
    leader.acquire_lock()
    assert scheduled(conn)["recurring-poll_admin_accounts"] <= time.time()  # due now
    assert repairs("unscheduled", "poll_admin_accounts") >= 1
    assert len(scheduled(conn)) == len(sched.RECURRING)
    assert {labels[0]: series._value.get() for labels, series in RECURRING_JOBS._metrics.items()} == {
        name: 1 for name in sched.RECURRING_NAMES}


def test_due_run_is_coalesced_while_the_previous_waits_or_runs(core_env):
    from rq.worker import Worker

    conn = connection()
    leader = sched.LeaderScheduler(get_settings(), conn)
    assert leader.acquire_lock()
    job_id = "recurring-record_queue_stats"
    for _ in range(5):  # five due runs while no worker takes any
        conn.zadd("rq:scheduler:scheduled_jobs", {job_id: 0}, xx=True)
        leader.enqueue_jobs()
    assert conn.lrange("rq:queue:monitoring", 0, -1) == [job_id.encode()]
    assert scheduled(conn)[job_id] > time.time()  # the next run stays scheduled

    # Taken by a worker, not started yet: RQ moves it to the queue's intermediate list, the status changes in
    # the work horse after the fork. Still the pending run.
    conn.lmove("rq:queue:monitoring", "rq:queue:monitoring:intermediate")
    conn.zadd("rq:scheduler:scheduled_jobs", {job_id: 0}, xx=True)
    leader.enqueue_jobs()
    assert conn.llen("rq:queue:monitoring") == 0
    conn.delete("rq:queue:monitoring:intermediate")

    # Started on a live worker: still coalesced. Its worker gone: the next due run is enqueued.
    conn.delete("rq:queue:monitoring")
    worker = Worker(["monitoring"], connection=conn)
    worker.register_birth()
    conn.hset(Job.key_for(job_id), mapping={"status": "started", "worker_name": worker.name})
    conn.zadd("rq:scheduler:scheduled_jobs", {job_id: 0}, xx=True)
    leader.enqueue_jobs()
    assert conn.llen("rq:queue:monitoring") == 0
    worker.register_death()
    conn.delete(worker.key)
    conn.zadd("rq:scheduler:scheduled_jobs", {job_id: 0}, xx=True)
    leader.enqueue_jobs()
    assert conn.lrange("rq:queue:monitoring", 0, -1) == [job_id.encode()]

    # A late run (workers back after an outage) that just ended: the next one comes an interval after it.
    conn.delete("rq:queue:monitoring")
    ended = time.time() - 1
    conn.hset(Job.key_for(job_id), mapping={"status": "finished", "ended_at": utcformat(datetime.fromtimestamp(ended, timezone.utc))})
    conn.zadd("rq:scheduler:scheduled_jobs", {job_id: 0}, xx=True)
    leader.enqueue_jobs()
    assert conn.llen("rq:queue:monitoring") == 0
    assert scheduled(conn)[job_id] == pytest.approx(ended + 15, abs=0.01)


def test_running_poll_is_not_started_twice(simulator):
    conn = connection()
    conn.set(POLL_RUNNING_KEY.format(name="poll_admin_accounts"), "another-run", ex=60)
    assert tasks.poll_admin_accounts()["outcome"] == "skipped"
    assert conn.get(POLL_RUNNING_KEY.format(name="poll_admin_accounts")) == b"another-run"
    tasks.poll_admin_accounts_local()
    assert conn.get(POLL_RUNNING_KEY.format(name="poll_admin_accounts_local")) is None  # released after the run


def test_scheduled_api_shows_next_run_and_reschedules(client, auth):
    conn = connection()
    sched.ensure_recurring(sched.LeaderScheduler(get_settings(), conn), sched.intervals(get_settings(), conn))
    recurring = {item["task_name"]: item for item in client.get("/jobs/scheduled", headers=auth).json()["recurring"]}
    assert recurring["record_queue_stats"]["interval"] == 15 and recurring["record_queue_stats"]["registered"]
    assert recurring["poll_admin_accounts"]["next_run_at"]
    changed = client.post("/jobs/scheduled/reschedule", headers=auth,
                          json={"task_name": "poll_admin_accounts", "interval": 120, "run_now": True}).json()
    assert changed["interval"] == 120
    assert sched.intervals(get_settings(), conn)["poll_admin_accounts"] == 120  # the leader keeps it
    unknown = client.post("/jobs/scheduled/reschedule", headers=auth, json={"task_name": "rm", "run_now": True})
    assert unknown.status_code == 404
    empty = client.post("/jobs/scheduled/reschedule", headers=auth, json={"task_name": "poll_admin_accounts"})
    assert empty.status_code == 422
