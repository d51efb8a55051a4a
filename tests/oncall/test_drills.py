"""Outage drills: real modwatch processes, a real Prometheus and Alertmanager, the shipped rules and routing.

One stack for all five drills: its own redis-server (so drill (d) can stop it), `modwatch api`, two workers on
every queue, `modwatch scheduler`, Prometheus (scrape and evaluation every second) loading alerts/ rendered with
every duration x SCALE (`alerts/build.py --scale`), and Alertmanager running observability/alertmanager/
alertmanager.yml with its timings x SCALE and its `pager` and `tickets` receivers pointed at a webhook in this
process. Each drill stages an outage, asserts which alerts reach the webhook (pages and tickets: nothing else),
measures the time from the outage to the page, repairs the outage and waits until nothing fires.

Prometheus starts with the history a deployed one has: HISTORY_SECONDS of healthy samples of the SLO's waiting
series, as long as the rules' longest window (3 d, scaled). Without it a ratio over "3 days" is a ratio over the
minutes the stack has run, and a drill that leaves a webhook queued for 30 s would open a slow-burn ticket that no
production outage of that length opens (CI saw it stay open through every later drill).

Times to page, scaled back by 1/SCALE, are printed and written to $DRILL_TIMES (docs/oncall.md quotes them).
PANIC_STOP is on so the polls run without a Mastodon (they return "skipped": a run all the same).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import httpx
import pytest
import redis
import yaml
from rq import Queue
from rq.command import send_stop_job_command
from rq.job import Job

from isolation import free_port, wait_for
from modwatch.jobs.queues import PRIORITY
from modwatch.redis_keys import QUEUE_STATS_LAST_SUCCESS_KEY, SCHEDULER_HEARTBEAT_KEY
from oncall.support import REPO, process_env
from oncall.test_e2e_prometheus import dashboard_queries, render_rules

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
REDIS_SERVER = shutil.which("redis-server")
PROMTOOL = shutil.which("promtool")
pytestmark = [
    pytest.mark.skipif(None in (PROMETHEUS, ALERTMANAGER, REDIS_SERVER, PROMTOOL),
                       reason="needs prometheus, prometheus-alertmanager and redis-server (Debian packages)"),
]

# Every duration of the rules and of Alertmanager's routing runs 20x faster; nothing else is changed.
SCALE = 0.05
QUEUE_STATS_INTERVAL = 1
POLL_INTERVAL = 2
API_KEY = "drill-api-key"
DRILL_TIMES = Path(os.environ.get("DRILL_TIMES", "/tmp/modwatch-drill-times.json"))
# The longest rule window (3 d) scaled, with a margin; the recording rules' step (30 s) scaled.
HISTORY_SECONDS = 3 * 86400 * SCALE + 600
HISTORY_STEP_SECONDS = 30 * SCALE


class Receiver(BaseHTTPRequestHandler):
    """Alertmanager's webhook: every notification, with the time it arrived."""

    received: list[tuple[float, dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.received.append((time.time(), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def notified_since(start: float) -> list[tuple[float, str, str, str]]:
    """(arrival, alertname, severity, queue or "") of each firing alert notified after `start`."""
    return [(at, alert["labels"]["alertname"], alert["labels"].get("severity", ""), alert["labels"].get("queue", ""))
            for at, body in list(Receiver.received) if at >= start
            for alert in body["alerts"] if alert["status"] == "firing"]


def scaled_alertmanager_config(webhook: str) -> dict:
    config = yaml.safe_load((REPO / "observability" / "alertmanager" / "alertmanager.yml").read_text())
    build = _build()

    def scale(node: dict) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in node:
                node[key] = build._scaled(node[key], SCALE)
        for route in node.get("routes", []):
            scale(route)

    scale(config["route"])
    for receiver in config["receivers"]:
        if receiver["name"] in ("pager", "tickets"):
            # Resolved notifications too: without them Alertmanager treats a group that fires again with the
            # same alerts (drill (e) after (a)) as already notified until repeat_interval.
            receiver["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
    return config


def _build():
    import importlib.util

    spec = importlib.util.spec_from_file_location("alerts_build", REPO / "alerts" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        names = ("redis", "api", "worker1", "worker2", "scheduler", "prometheus", "alertmanager", "cluster", "webhook")
        self.ports = {name: free_port() for name in names}
        self.redis_url = f"redis://127.0.0.1:{self.ports['redis']}/0"
        self.processes: dict[str, subprocess.Popen] = {}
        self.prometheus = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['prometheus']}", timeout=10)
        self.alertmanager = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['alertmanager']}", timeout=10)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=5)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(args, env=env or dict(os.environ), stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.workdir)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def env(self, metrics_port: int | None = None) -> dict[str, str]:
        return process_env(self.workdir, metrics_port, REDIS_URL=self.redis_url, API_KEY=API_KEY,
                           WEBHOOK_SECRET="drill-webhook-secret", QUEUE_STATS_INTERVAL=str(QUEUE_STATS_INTERVAL),
                           POLL_ADMIN_ACCOUNTS_INTERVAL=str(POLL_INTERVAL),
                           POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL=str(POLL_INTERVAL), PANIC_STOP="true")

    def start_redis(self) -> None:
        # Saved on shutdown and loaded on start, as a deployed Redis with persistence does.
        self.start("redis", [REDIS_SERVER, "--port", str(self.ports["redis"]), "--bind", "127.0.0.1",
                             "--dir", str(self.workdir), "--save", "3600 1", "--appendonly", "no"])
        wait_for(lambda: self.redis.ping(), "redis-server to answer", 30, ignoring=(redis.RedisError,))

    def start_worker(self, name: str) -> None:
        self.start(name, [sys.executable, "-m", "modwatch.cli", "worker"], self.env(self.ports[name]))

    def start_scheduler(self) -> None:
        self.start("scheduler", [sys.executable, "-m", "modwatch.cli", "scheduler"], self.env(self.ports["scheduler"]))

    def start_modwatch(self) -> None:
        self.start("api", [sys.executable, "-m", "modwatch.cli", "api", "--host", "127.0.0.1",
                           "--port", str(self.ports["api"])], self.env())
        self.start_worker("worker1")
        self.start_worker("worker2")
        self.start_scheduler()

    def start_monitoring(self) -> None:
        receiver = ThreadingHTTPServer(("127.0.0.1", self.ports["webhook"]), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        self.receiver = receiver
        am_config = self.workdir / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(scaled_alertmanager_config(f"http://127.0.0.1:{self.ports['webhook']}/")))
        self.start("alertmanager", [
            ALERTMANAGER, f"--config.file={am_config}", f"--storage.path={self.workdir / 'am'}",
            f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}", "--cluster.listen-address=",
        ])
        rules = self.workdir / "modwatch.rules.yaml"
        # The stream consumer (`modwatch stream`) needs a Mastodon streaming API and is not part of this stack:
        # its rules would page for its absence. Every other rule group is loaded as shipped.
        groups = yaml.safe_load(render_rules({}, scale=SCALE))["groups"]
        rules.write_text(yaml.safe_dump({"groups": [group for group in groups if "stream" not in group["name"]]}))
        targets = {"modwatch-api": ["api"], "modwatch-worker": ["worker1", "worker2"], "modwatch-scheduler": ["scheduler"]}
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}]},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{self.ports[name]}" for name in names]}]}
                for job, names in targets.items()
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.backfill_healthy_history()
        self.start("prometheus", [
            PROMETHEUS, f"--config.file={self.workdir / 'prometheus.yml'}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}", "--rules.alert.resend-delay=1s",
        ])
        wait_for(lambda: self.prometheus.get("/-/ready").status_code == 200, "Prometheus", 60, ignoring=(httpx.HTTPError,))
        wait_for(lambda: self.alertmanager.get("/-/ready").status_code == 200, "Alertmanager", 60,
                 ignoring=(httpx.HTTPError,))

    def backfill_healthy_history(self) -> None:
        """HISTORY_SECONDS of "no job waits past the SLO" for every queue, written as TSDB blocks by promtool."""
        end = time.time() - 5
        steps = int(HISTORY_SECONDS / HISTORY_STEP_SECONDS)
        lines = ["# TYPE queue:modwatch_job_waiting_past_slo:bool gauge"]
        for queue in PRIORITY:
            lines += [f'queue:modwatch_job_waiting_past_slo:bool{{queue="{queue}"}} 0 '
                      f"{end - (steps - n) * HISTORY_STEP_SECONDS:.3f}" for n in range(steps + 1)]
        history = self.workdir / "history.om"
        history.write_text("\n".join(lines + ["# EOF", ""]))
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(history),
                        str(self.workdir / "tsdb")], check=True, capture_output=True, timeout=120)

    def query(self, expr: str) -> list[dict]:
        answer = self.prometheus.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
        return answer["data"]["result"]

    def active_alerts(self) -> list[dict]:
        """Pending or firing alerts that would reach a receiver (info goes nowhere)."""
        alerts = self.prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
        return [alert for alert in alerts if alert["labels"].get("severity") != "info"]

    def wait_quiet(self, what: str) -> None:
        try:
            wait_for(lambda: not self.active_alerts(), f"no alert pending or firing {what}", 120, interval=0.5,
                     ignoring=(httpx.HTTPError,))
        except AssertionError:
            raise AssertionError(f"still active {what}: {[a['labels'] for a in self.active_alerts()]}") from None

    def shutdown(self) -> None:
        # Redis last: a worker stopping writes its death there, and waits for Redis while it is away.
        for name in sorted(self.processes, key=lambda name: name == "redis"):
            self.stop(name)
        self.receiver.shutdown()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.workdir.glob("*.log")))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("drills"))
    try:
        running.start_redis()
        running.start_modwatch()
        running.start_monitoring()
        wait_for(lambda: len(running.query("up == 1")) == 4, "every modwatch target up", 120, interval=0.5)
        wait_for(lambda: running.query("modwatch_queue_stats_last_success_timestamp_seconds"), "queue statistics", 60)
        running.wait_quiet("at start")
        history = running.query('count_over_time(queue:modwatch_job_waiting_past_slo:bool{queue="webhooks"}[3h])')
        assert history and float(history[0]["value"][1]) > 0.9 * 3 * 3600 / HISTORY_STEP_SECONDS, "no backfilled history"
        yield running
    except BaseException:
        print(running.logs())
        raise
    finally:
        running.shutdown()
        DRILL_TIMES.write_text(json.dumps(TIMES, indent=2))
        print("\ntime to page (scaled back x{:g}):".format(1 / SCALE))
        for drill, seconds in TIMES.items():
            print(f"  {drill}: {seconds:.1f}")


# drill -> seconds from the outage to its page, scaled back to real time.
TIMES: dict[str, float] = {}


def observe(stack: Stack, drill: str, start: float, expected: set[tuple[str, str, str]], settle: float,
            meanwhile: Callable[[], None] = lambda: None) -> None:
    """Wait for the expected pages, run `meanwhile`, then settle until `settle` seconds after the pages:
    nothing else may reach the receiver."""
    def all_paged():
        got = {(name, severity, queue) for _, name, severity, queue in notified_since(start)}
        return expected <= got

    try:
        wait_for(all_paged, f"{drill}: pages {sorted(expected)}", 120, interval=0.2)
    except AssertionError:
        print(stack.logs())
        in_alertmanager = [(a["labels"]["alertname"], a["labels"].get("queue"), a["status"])
                           for a in stack.alertmanager.get("/api/v2/alerts").json()]
        raise AssertionError(f"{drill}: got {notified_since(start)}, in Alertmanager {in_alertmanager}") from None
    # The first page is what wakes someone; the other queues join its group (group_interval later).
    paged = min(at for at, name, severity, queue in notified_since(start) if (name, severity, queue) in expected)
    TIMES[drill] = (paged - start) / SCALE
    settled = time.time() + settle
    meanwhile()
    time.sleep(max(0.0, settled - time.time()))
    got = {(name, severity, queue) for _, name, severity, queue in notified_since(start)}
    assert got == expected, f"{drill}: more than the expected pages reached Alertmanager's receiver: {got - expected}"


def test_a_every_worker_stopped_with_webhooks_queued(stack):
    webhooks = Queue("webhooks", connection=stack.redis)
    # The outage starts when the workers are told to stop: they leave RQ's registry at once, while the
    # processes take a few seconds more to exit.
    start = time.time()
    stack.stop("worker1")
    stack.stop("worker2")
    for n in range(5):
        webhooks.enqueue("modwatch.jobs.tasks.process_new_status", {"id": str(n)}, job_id=f"drill-a-{n}")

    # Every queue with work is named: webhooks, monitoring (record_queue_stats) and moderation (the polls).
    expected = {("ModwatchQueueNoWorkers", "page", queue) for queue in ("webhooks", "monitoring", "moderation")}

    def dashboards_tell_the_truth() -> None:
        """Every panel's expression runs, and the panels on-call looks at first show the backlog, no worker, the
        age growing and Redis up. Then the webhooks go (they need a Mastodon; recovery is drill (e)'s subject)
        before they wait past the SLO's 30 s, which is not this drill's subject."""
        panels: dict[tuple[str, str], list[dict]] = {}
        for uid, title, expr in dashboard_queries():
            panels.setdefault((uid, title), []).extend(stack.query(expr))

        def by_queue(uid: str, title: str) -> dict[str, float]:
            return {series["metric"].get("queue", ""): float(series["value"][1]) for series in panels[(uid, title)]}

        webhooks.empty()
        assert by_queue("modwatch-overview", "Backlog")["webhooks"] == 5
        assert by_queue("modwatch-overview", "Workers") == {"monitoring": 0, "webhooks": 0, "moderation": 0}
        workers_by_state = panels[("modwatch-queues", "Workers by state")]
        assert len(workers_by_state) == 9 and sum(float(series["value"][1]) for series in workers_by_state) == 0
        assert by_queue("modwatch-overview", "Oldest queued job")["webhooks"] > 5
        assert by_queue("modwatch-queues", "Jobs by status")  # per queue and status, read live
        assert [float(series["value"][1]) for series in panels[("modwatch-overview", "Redis")]] == [1]
        assert all(float(series["value"][1]) == 1 for series in panels[("modwatch-overview", "Recurring jobs")]
                   if "function" in series["metric"])

    # Settle past ModwatchTargetDown's (15 s scaled) and ModwatchQueueStatsStale's thresholds: both muted.
    observe(stack, "a_workers_down", start, expected, settle=max(0.0, start + 20 - time.time()),
            meanwhile=dashboards_tell_the_truth)
    stack.start_worker("worker1")
    stack.start_worker("worker2")
    stack.wait_quiet("after the workers returned")


def test_b_one_worker_stuck_on_a_long_job(stack):
    moderation = Queue("moderation", connection=stack.redis)
    start = time.time()
    # A job with a long timeout that runs past every timeout modwatch sets (scaled): the worker holds it.
    job = moderation.enqueue("time.sleep", 600, job_timeout=900, job_id="drill-b-stuck")
    expected = {("ModwatchWorkerStuck", "page", "moderation")}
    observe(stack, "b_worker_stuck", start, expected, settle=5)
    send_stop_job_command(stack.redis, job.id)
    wait_for(lambda: Job.fetch(job.id, connection=stack.redis).get_status() == "stopped", "the stuck job to stop", 30)
    stack.wait_quiet("after the stuck job stopped")


def test_c_scheduler_killed(stack):
    start = time.time()
    stack.stop("scheduler", signal.SIGKILL)
    expected = {("ModwatchSchedulerDown", "page", "")}
    # Settle past ModwatchTargetDown (15 s scaled) and ModwatchQueueStatsStale (12 s): both muted.
    observe(stack, "c_scheduler_killed", start, expected, settle=max(0.0, start + 22 - time.time()))
    stack.start_scheduler()
    stack.wait_quiet("after the scheduler returned")


def test_d_redis_stopped(stack):
    start = time.time()
    stack.stop("redis")
    expected = {("ModwatchRedisDown", "page", "")}
    observe(stack, "d_redis_down", start, expected, settle=max(0.0, start + 20 - time.time()))
    # Every process waits for Redis: the API (answering 503), the scheduler, and the workers, whose commands
    # retry for WORKER_REDIS_OUTAGE_SECONDS, so a job running at the outage finishes instead of being abandoned
    # (before that setting, a worker with a job in flight died and ModwatchAbandonedJobs opened a ticket).
    for name in ("api", "scheduler", "worker1", "worker2"):
        assert stack.processes[name].poll() is None, f"{name} exited while Redis was down"
    back = time.time()
    stack.start_redis()
    wait_for(lambda: float(stack.redis.get(SCHEDULER_HEARTBEAT_KEY) or 0) > back, "the scheduler to resume", 30)
    wait_for(lambda: float(stack.redis.get(QUEUE_STATS_LAST_SUCCESS_KEY) or 0) > back,
             "record_queue_stats to run again", 90)
    stack.wait_quiet("after Redis returned")
    assert {name for _, name, _, _ in notified_since(start)} == {"ModwatchRedisDown"}


def test_e_long_worker_outage_then_recovery(stack):
    """10 minutes without workers (30 s scaled, 30 statistics and 15 poll intervals), then back."""
    connection = stack.redis
    start = time.time()
    stack.stop("worker1")
    stack.stop("worker2")
    outage = 600 * SCALE
    expected = {("ModwatchQueueNoWorkers", "page", "monitoring"), ("ModwatchQueueNoWorkers", "page", "moderation")}
    observe(stack, "e_long_outage", start, expected, settle=max(0.0, start + outage - time.time()))
    # No catch-up storm in the making: one pending run of each recurring job, however many came due.
    from modwatch.jobs.enqueue import JOB_OPTIONS
    from modwatch.jobs.scheduler import RECURRING

    for queue in ("monitoring", "moderation"):
        pending = sorted(spec.job_id.encode() for spec in RECURRING if JOB_OPTIONS[spec.function].queue == queue)
        assert sorted(connection.lrange(f"rq:queue:{queue}", 0, -1)) == pending, queue
    coalesced = stack.query('sum(increase(modwatch_scheduler_recurring_runs_coalesced_total[1m]))')
    assert coalesced and float(coalesced[0]["value"][1]) > 10

    restarted = time.time()
    stack.start_worker("worker1")
    stack.start_worker("worker2")
    wait_for(lambda: connection.scard("rq:workers") == 2, "the workers to register", 60)
    ready = time.time()
    wait_for(lambda: float(connection.get(QUEUE_STATS_LAST_SUCCESS_KEY) or 0) > ready,
             "record_queue_stats to run again", 30)
    stats_resumed = time.time() - ready
    TIMES["e_stats_resumed_after_workers_ready_s"] = stats_resumed
    time.sleep(3 * POLL_INTERVAL)
    window = time.time() - restarted
    runs = {}
    for name in ("poll_admin_accounts", "poll_admin_accounts_local"):
        results = Job.fetch(f"recurring-{name}", connection=connection).results()
        runs[name] = [result.created_at.timestamp() for result in results if result.created_at.timestamp() >= restarted]
    # Each poll ran once at once, then on its interval: one run per interval since the restart (plus the
    # one waiting), not a burst of the 15 missed, and never two within half an interval. A fresh worker's
    # first poll imports the moderation stack (seconds on a loaded machine): within one production
    # interval (30 s), not always within the drill's 2 s.
    for name, times in runs.items():
        assert 1 <= len(times) <= window / POLL_INTERVAL + 1, (name, times, window)
        assert min(times) - ready < POLL_INTERVAL + 5, (name, times)
        ordered = sorted(times)
        assert all(b - a > POLL_INTERVAL / 2 for a, b in zip(ordered, ordered[1:])), (name, times)
    TIMES["e_first_poll_after_workers_ready_s"] = min(min(times) for times in runs.values()) - ready
    assert stats_resumed < QUEUE_STATS_INTERVAL + 2, stats_resumed
    stack.wait_quiet("after the long outage")
