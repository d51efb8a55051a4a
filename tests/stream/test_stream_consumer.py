"""`modwatch stream` as deployed: real consumer processes against the simulator's streaming API
(which follows mastodon/mastodon `streaming/index.js`), a real worker filing reports, Redis and SQLite.

Waits are generous and poll for what the processes do; nothing sleeps a fixed time to let them work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from fastapi.testclient import TestClient

from isolation import free_port, redis_db_url, wait_for
from modwatch.api.app import create_app
from modwatch.simulator.server import running
from modwatch.storage.db import session_scope, upgrade_database

REDIS_URL = redis_db_url(13)
KEY = {"X-API-Key": "stream-test-key"}
LEASE = 6  # long enough that a starved active consumer on a loaded machine still renews in time
# Endpoints analysis would need; the consumer must never call them.
ANALYSIS_ENDPOINTS = ("/api/v1/accounts/:id/statuses", "/api/v1/accounts/:id", "/api/v2/admin/accounts")


@pytest.fixture()
def sim():
    with running(accounts=5, seed=11, stream_heartbeat_seconds=0.5, ratelimit_limit=100_000) as simulator:
        yield simulator


@pytest.fixture()
def env(modwatch_env, sim):
    environment = modwatch_env(REDIS_URL, INSTANCE_BASE=sim.base_url, MASTODON_ACCESS_TOKEN="sim-admin-token",
                               DRY_RUN="false", STREAM_LEASE_SECONDS=str(LEASE), STREAM_READ_TIMEOUT="5",
                               STREAM_BATCH_WAIT="0.1", API_KEY=KEY["X-API-Key"])
    upgrade_database()  # once, before several processes would race to migrate
    return environment


class Processes:
    def __init__(self, env: dict[str, str], logs) -> None:
        self.env = {**os.environ, **env}
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def start(self, *args: str) -> tuple[subprocess.Popen, int]:
        port = free_port()
        log = open(self.logs / f"{args[0]}-{port}.log", "wb")
        process = subprocess.Popen([sys.executable, "-m", "modwatch.cli", *args, "--metrics-port", str(port)],
                                   env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process, port

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture()
def processes(env, tmp_path):
    started = Processes(env, tmp_path)
    yield started
    started.stop()


def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text_ = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text_) for sample in family.samples}


def value(port: int, name: str, **labels: str) -> float:
    return metrics(port).get((name, tuple(sorted(labels.items()))), 0.0)


def total(port: int, name: str, **labels: str) -> float:
    """Sum over the series of `name` that carry `labels`."""
    return sum(value for (series, carried), value in metrics(port).items()
               if series == name and set(labels.items()) <= set(carried))


def active(port: int) -> bool:
    return value(port, "modwatch_stream_active") == 1


def post(sim, path: str, body: dict) -> dict:
    response = httpx.post(f"{sim.base_url}/_sim/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def streamed_ids(sim, since: int) -> set[str]:
    """The remote public posts the simulator made after timeline position `since` and still has."""
    state = sim.state
    with state.lock:
        return {str(i) for i in state.timeline[since:] if i in state.statuses
                and state.accounts[state.statuses[i].account_id].domain is not None}


def recorded() -> list[tuple[str, str, str, str]]:
    with session_scope() as session:
        return [tuple(row) for row in session.execute(
            text("SELECT status_id, version, decision, via FROM stream_posts")).all()]


def test_wave_is_reported_once_per_account_and_a_disconnect_is_healed(sim, processes):
    consumer, consumer_port = processes.start("stream")
    processes.start("worker", "moderation")
    wait_for(lambda: value(consumer_port, "modwatch_stream_connected", stream="public:remote") == 1,
             "the consumer to connect", timeout=90, ignoring=(httpx.HTTPError,))
    start = len(sim.state.timeline)
    post(sim, "stream/firehose", {"rate": 40, "spam_ratio": 0.05, "edit_ratio": 0, "delete_ratio": 0})
    wave = post(sim, "stream/wave", {"accounts": 6, "posts": 2})["account_ids"]
    wait_for(lambda: len(recorded()) > 80, "the first posts to be decided", timeout=90)

    # The streaming server goes away for 2 s; posts keep coming meanwhile.
    post(sim, "stream/disconnect", {"down_seconds": 2})
    wait_for(lambda: value(consumer_port, "modwatch_stream_gap_filled_posts_total", stream="public:remote") > 0,
             "a gap fill after the reconnect", timeout=90)
    # More posts by the wave accounts after their first report was started: still one report each.
    for account_id in wave:
        post(sim, "statuses", {"account_id": account_id, "text": "Another crypto giveaway, t.me/freecoins"})
    edited = post(sim, "statuses", {"account_id": wave[0], "text": "harmless at first"})
    post(sim, f"stream/statuses/{edited['id']}/edit", {"text": "now a crypto giveaway, whatsapp me"})
    post(sim, "stream/firehose", {"rate": 0})
    gone = post(sim, "statuses", {"account_id": wave[1], "text": "soon deleted"})
    wait_for(lambda: gone["id"] in {row[0] for row in recorded()}, "the post to be deleted to be decided", timeout=90)
    assert httpx.delete(f"{sim.base_url}/_sim/stream/statuses/{gone['id']}", timeout=10).status_code == 200

    expected = streamed_ids(sim, start)
    wait_for(lambda: expected <= {row[0] for row in recorded()}, "every streamed post to be decided", timeout=120)
    rows = recorded()
    # No post analysed twice: one row per version, and every decision counted is a row.
    assert len(rows) == len({(status_id, version) for status_id, version, _, _ in rows})
    decided = sum(total(consumer_port, "modwatch_stream_posts_total", decision=d)
                  for d in ("clean", "flagged", "reported", "already_reported"))
    assert decided == len(rows)
    assert {via for *_, via in rows} == {"stream", "gap_fill"}
    assert value(consumer_port, "modwatch_stream_reconnects_total", stream="public:remote", reason="network") >= 1
    versions = [version for status_id, version, *_ in rows if status_id == edited["id"]]
    assert len(versions) == 2 and "" in versions  # the original and its edit, each decided once

    def deleted_at():
        with session_scope() as session:
            return session.execute(text("SELECT deleted_at FROM stream_posts WHERE status_id = :id"),
                                   {"id": gone["id"]}).scalar()

    # The delete comes after the post's decision on the stream, in a batch of its own.
    wait_for(lambda: deleted_at() is not None, "the delete to be recorded", timeout=30)

    def reports_per_wave_account() -> Counter:
        filed = httpx.get(f"{sim.base_url}/_sim/reports", timeout=10).json()
        return Counter(r["target_account"]["id"] for r in filed if r["target_account"]["id"] in wave)

    wait_for(lambda: set(reports_per_wave_account()) == set(wave), "every wave account to be reported", timeout=120)
    assert reports_per_wave_account() == Counter({account_id: 1 for account_id in wave})
    decisions = Counter(decision for _, _, decision, _ in rows)
    assert decisions["reported"] >= len(wave) and decisions["already_reported"] >= len(wave)
    # A reported post's decision leads to its batch's trace and to the report job, which continues that trace.
    reported_post = next(status_id for status_id, _, decision, _ in rows if decision == "reported")
    with TestClient(create_app()) as api:
        view = api.get(f"/moderation/stream/posts/{reported_post}", headers=KEY).json()["versions"][0]
        assert view["decision"] == "reported" and view["job_id"] and view["trace_id"]
        job = api.get(view["job_url"], headers=KEY).json()
        assert job["trace_id"] == view["trace_id"]
        assert job["status"] == "finished"
        assert api.get("/moderation/stream", headers=KEY).json()["active_consumer"]
        assert api.get("/moderation/stream/posts/1", headers=KEY).status_code == 404
    # Analysis asked Mastodon nothing: the consumer only read the instance, the stream and the timeline.
    calls = {dict(labels)["endpoint"] for (name, labels), v in metrics(consumer_port).items()
             if name == "modwatch_mastodon_requests_total" and v}
    assert "/api/v1/timelines/public" in calls
    assert not calls & set(ANALYSIS_ENDPOINTS), calls
    assert consumer.poll() is None


def test_a_standby_takes_over_when_the_active_consumer_dies(sim, processes):
    first, first_port = processes.start("stream")
    wait_for(lambda: active(first_port) and value(first_port, "modwatch_stream_connected", stream="public:remote"),
             "the first consumer to become active", timeout=90, ignoring=(httpx.HTTPError,))
    second, second_port = processes.start("stream")
    wait_for(lambda: metrics(second_port) and not active(second_port), "the second consumer to stand by",
             timeout=90, ignoring=(httpx.HTTPError,))
    start = len(sim.state.timeline)
    post(sim, "stream/firehose", {"rate": 30, "edit_ratio": 0, "delete_ratio": 0})
    # Three whole leases: the standby stays standby while the active consumer renews.
    deadline = time.monotonic() + 3 * LEASE
    while time.monotonic() < deadline:
        assert not active(second_port)
        assert value(second_port, "modwatch_stream_connected", stream="public:remote") == 0
        time.sleep(0.2)
    wait_for(lambda: len(recorded()) > 30, "the active consumer to decide posts", timeout=90)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    wait_for(lambda: active(second_port), "the standby to take over", timeout=90)
    wait_for(lambda: value(second_port, "modwatch_stream_connected", stream="public:remote") == 1,
             "the standby to connect", timeout=90)
    post(sim, "stream/firehose", {"rate": 0})
    # What arrived while nobody consumed is filled in from the cursor the first consumer recorded.
    expected = streamed_ids(sim, start)
    wait_for(lambda: expected <= {row[0] for row in recorded()}, "every post to be decided after the takeover",
             timeout=120)
    rows = recorded()
    assert len(rows) == len({(status_id, version) for status_id, version, _, _ in rows})
    assert value(second_port, "modwatch_stream_gap_filled_posts_total", stream="public:remote") > 0
