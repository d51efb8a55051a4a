"""Worker and scheduler drills with real processes: SIGKILL mid-job, SIGTERM while busy, two schedulers."""

from __future__ import annotations

import signal
import time

import redis
from fastapi.testclient import TestClient
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from faults.support import REDIS_URL, kill_with_horse, modwatch, stop
from isolation import wait_for
from modwatch.jobs.queues import WEBHOOKS, get_queue
from modwatch.redis_keys import QUEUE_STATS_LAST_SUCCESS_KEY
from modwatch.telemetry import queue_stats


def started_entries(conn: redis.Redis) -> dict[bytes, float]:
    return dict(conn.zrange(f"rq:wip:{WEBHOOKS}", 0, -1, withscores=True))


def abandoned_gauge(api: TestClient) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(f'modwatch_queue_abandoned_jobs{{queue="{WEBHOOKS}"}}'):
            return float(line.split()[-1])
    raise AssertionError("modwatch_queue_abandoned_jobs is not served")


def test_sigkilled_worker_leaves_an_abandoned_job_that_is_retried_or_failed_visibly(fault_env, tmp_path):
    from modwatch.api.app import create_app
    from modwatch.storage.db import upgrade_database

    conn = redis.Redis.from_url(REDIS_URL)
    queue = get_queue(WEBHOOKS)
    retried = queue.enqueue("faultjobs.slow", "retried", 30, retry=Retry(max=1), job_id="killed-with-retry")
    worker = modwatch("worker", WEBHOOKS, env=fault_env, log=tmp_path / "worker.log")
    wait_for(lambda: conn.get("faults:retried:started"), "the job to start", 60)
    kill_with_horse(worker)  # mid-job

    # The job stays "started" with nobody running it until its heartbeat lapses. RQ's heartbeat
    # TTL is about a minute; the drill ages the registry entry instead of waiting for it.
    assert retried.get_status(refresh=True) == JobStatus.STARTED
    entries = started_entries(conn)
    assert len(entries) == 1
    conn.zadd(f"rq:wip:{WEBHOOKS}", {member: time.time() - 1 for member in entries})

    upgrade_database()
    with TestClient(create_app()) as api:
        assert abandoned_gauge(api) == 1

    # A new worker's maintenance finds it: with a retry left it runs again, to the end.
    survivor = modwatch("worker", WEBHOOKS, "--burst", env=fault_env, log=tmp_path / "survivor.log")
    assert survivor.wait(timeout=120) == 0
    assert retried.get_status(refresh=True) == JobStatus.FINISHED
    assert conn.get("faults:retried:started") == b"2" and conn.get("faults:retried:finished") == b"1"
    stats, _ = queue_stats.collect(conn, [queue_stats.QueueKeys.of(WEBHOOKS)])
    assert stats[WEBHOOKS]["abandoned_jobs"] == 0


def test_sigkilled_job_without_retries_lands_in_failed_as_abandoned(fault_env, tmp_path):
    conn = redis.Redis.from_url(REDIS_URL)
    queue = get_queue(WEBHOOKS)
    job = queue.enqueue("faultjobs.slow", "once", 30, job_id="killed-once")
    worker = modwatch("worker", WEBHOOKS, env=fault_env, log=tmp_path / "worker.log")
    wait_for(lambda: conn.get("faults:once:started"), "the job to start", 60)
    kill_with_horse(worker)
    conn.zadd(f"rq:wip:{WEBHOOKS}", {member: time.time() - 1 for member in started_entries(conn)})
    StartedJobRegistry(queue=queue).cleanup()  # what every worker's maintenance runs
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert "AbandonedJobError" in (job.latest_result().exc_string or "")
    assert conn.get("faults:once:finished") is None


def test_sigterm_lets_the_current_job_finish_then_the_worker_exits(fault_env, tmp_path):
    conn = redis.Redis.from_url(REDIS_URL)
    queue = get_queue(WEBHOOKS)
    busy = queue.enqueue("faultjobs.slow", "busy", 4, job_id="busy-at-sigterm")
    waiting = queue.enqueue("faultjobs.slow", "waiting", 0, job_id="queued-at-sigterm")
    worker = modwatch("worker", WEBHOOKS, env=fault_env, log=tmp_path / "worker.log")
    wait_for(lambda: conn.get("faults:busy:started"), "the job to start", 60)
    worker.send_signal(signal.SIGTERM)  # the worker only: RQ's warm shutdown waits for its horse
    assert worker.wait(timeout=60) == 0
    assert busy.get_status(refresh=True) == JobStatus.FINISHED
    assert conn.get("faults:busy:finished") == b"1"
    assert waiting.get_status(refresh=True) == JobStatus.QUEUED  # not started after the signal
    assert not started_entries(conn)


def test_two_schedulers_and_a_worker_run_each_recurring_job_once_per_interval(fault_env, tmp_path):
    env = {**fault_env, "QUEUE_STATS_INTERVAL": "2", "POLL_ADMIN_ACCOUNTS_INTERVAL": "3600",
           "POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL": "3600"}
    conn = redis.Redis.from_url(REDIS_URL)
    schedulers = [modwatch("scheduler", env=env, log=tmp_path / f"scheduler{n}.log") for n in range(2)]
    worker = modwatch("worker", "monitoring", env=env, log=tmp_path / "worker.log")
    try:
        wait_for(lambda: conn.get(QUEUE_STATS_LAST_SUCCESS_KEY), "the first record_queue_stats run", 60)
        first = float(conn.get(QUEUE_STATS_LAST_SUCCESS_KEY))
        time.sleep(12)
        job = Job.fetch("recurring-record_queue_stats", connection=conn)
        results = job.results()  # one Result per run, newest first
        last = float(conn.get(QUEUE_STATS_LAST_SUCCESS_KEY))
    finally:
        for process in schedulers + [worker]:
            stop(process)
    runs = [result for result in results if result.created_at.timestamp() >= first - 0.5]
    span = last - first
    # Each 2 s interval runs the job once: two schedulers must not double it.
    assert span / 2 - 1 <= len(runs) - 1 <= span / 2 + 1, (len(runs), span)
    gaps = sorted(b.created_at.timestamp() - a.created_at.timestamp() for a, b in zip(runs[1:], runs[:-1]))
    # Never two runs back to back (a second scheduler's copy would run right after the first). A run
    # the worker took late, under load, is followed by the next one on schedule, so a gap can be
    # shorter than the interval: the bound is loose on purpose.
    assert gaps and gaps[0] > 0.3, gaps
    assert all(result.type == result.Type.SUCCESSFUL for result in runs)


def test_a_worker_waits_through_a_redis_outage_and_its_running_job_finishes(fault_env, private_redis, tmp_path):
    # Without WORKER_REDIS_OUTAGE_SECONDS the worker died on its first failed heartbeat and left the job
    # "started" until RQ's 10-minute cleanup called it abandoned (the Redis outage drill saw both).
    env = {**fault_env, "REDIS_URL": private_redis.url, "WORKER_REDIS_OUTAGE_SECONDS": "60"}
    conn = redis.Redis.from_url(private_redis.url)
    job = Queue(WEBHOOKS, connection=conn).enqueue("faultjobs.slow", "outage", 4, job_id="running-in-outage")
    worker = modwatch("worker", WEBHOOKS, env=env, log=tmp_path / "worker.log")
    try:
        wait_for(lambda: conn.get("faults:outage:started"), "the job to start", 60)
        private_redis.stop()
        time.sleep(8)  # the job ends while Redis is away, and the worker misses heartbeats
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        private_redis.start()
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, "the job to finish", 60,
                 ignoring=(redis.RedisError,))
        assert worker.poll() is None
        assert conn.get("faults:outage:finished") == b"1" and conn.get("faults:outage:started") == b"1"
        assert started_entries(conn) == {}
    finally:
        stop(worker)
