"""The shipped rules and dashboards against a real Prometheus scraping real modwatch processes.

Starts `modwatch api`, a worker on the `monitoring` queue only and `modwatch scheduler` on free ports
(Redis db 5, a temporary SQLite database), and Prometheus (scrape and rule evaluation every second) with
alerts/ rendered through an overlay that only shortens ModwatchQueueStalled's age threshold and `for:`.
No worker listens on `webhooks`, so a job put there is a stalled queue while queue statistics keep flowing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Callable, TypeVar

import httpx
import pytest
import redis
import yaml
from rq import Queue

from isolation import free_port, wait_for
from oncall.support import DASHBOARDS, REPO, process_env

from isolation import claimed_redis_db, redis_db_url

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (Debian: prometheus)")

REDIS_URL = redis_db_url(5)
API_KEY = "e2e-api-key"
QUEUE_STATS_INTERVAL = 3
RANGES = {"$__rate_interval": "15s", "$__interval": "5s", "$__range": "5m"}
# Panels that must show data once the stack runs; the others may legitimately be empty (no Mastodon, no reports).
CORE_PANELS = {
    "modwatch-overview": ["Oldest queued job", "Backlog", "Workers", "Throughput", "Oldest queued job age",
                          "Scheduler heartbeat age", "Queue statistics age", "Dry run / panic stop",
                          "Webhook deliveries", "Targets up"],
    "modwatch-queues": ["Jobs by status", "Oldest queued job age", "Enqueued and finished", "Workers by state",
                        "Wait time (enqueue or due to start)", "Run time", "Attempts by function and outcome (time range)",
                        "Abandoned jobs", "Statistics collection time"],
    "modwatch-api": ["Requests by route", "Latency p95 by route", "Webhook deliveries by outcome", "Running versions"],
    "modwatch-moderation": ["Dry run / panic stop"],
}
DEADLINE_SECONDS = 120
T = TypeVar("T")


def wait_for_stack(check: Callable[[], T], what: str) -> T:
    """`wait_for` as the stack needs it: Prometheus scrapes and evaluates every second, so asking twice a second
    is enough, and a connection error (Prometheus or a target still starting) is one more "not yet"."""
    return wait_for(check, what, DEADLINE_SECONDS, interval=0.5, ignoring=(httpx.HTTPError, redis.RedisError))


def render_rules(overrides: dict, scale: float = 1.0) -> str:
    spec = importlib.util.spec_from_file_location("alerts_build", REPO / "alerts" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.render(overrides, scale)


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {name: free_port() for name in ("api", "worker", "scheduler", "prometheus")}
        self.processes: list[subprocess.Popen] = []
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.prometheus = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['prometheus']}", timeout=10)

    def env(self, metrics_port: int | None = None) -> dict[str, str]:
        return process_env(self.workdir, metrics_port, REDIS_URL=REDIS_URL, API_KEY=API_KEY,
                           WEBHOOK_SECRET="e2e-webhook-secret", QUEUE_STATS_INTERVAL=str(QUEUE_STATS_INTERVAL),
                           POLL_ADMIN_ACCOUNTS_INTERVAL="3600", POLL_ADMIN_ACCOUNTS_LOCAL_INTERVAL="3600")

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.processes.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))

    def start_modwatch(self) -> None:
        modwatch = [sys.executable, "-m", "modwatch.cli"]
        self.start("api", [*modwatch, "api", "--host", "127.0.0.1", "--port", str(self.ports["api"])], self.env())
        self.start("worker", [*modwatch, "worker", "monitoring"], self.env(self.ports["worker"]))
        self.start("scheduler", [*modwatch, "scheduler"], self.env(self.ports["scheduler"]))

    def start_prometheus(self) -> None:
        rules = self.workdir / "modwatch.rules.yaml"
        rules.write_text(render_rules({"queue_stalled_oldest_age_seconds": 5, "queue_stalled_for": "2s"}))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{self.ports[port]}"]}]}
                for job, port in (("modwatch-api", "api"), ("modwatch-worker", "worker"),
                                  ("modwatch-scheduler", "scheduler"))
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.start("prometheus", [
            PROMETHEUS, f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            "--enable-feature=exemplar-storage",
        ], dict(os.environ))
        wait_for_stack(lambda: self.prometheus.get("/-/ready").status_code == 200, "Prometheus to be ready")

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def query(self, expr: str) -> list[dict]:
        answer = self.prometheus.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
        return answer["data"]["result"]

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.workdir.glob("*.log")))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    connection = claimed_redis_db(REDIS_URL)
    running = Stack(tmp_path_factory.mktemp("e2e"))
    try:
        running.start_modwatch()
        running.start_prometheus()
        wait_for_stack(lambda: running.query('up{job=~"modwatch-.*"} == 1') and len(running.query('up == 1')) == 3,
                       "every modwatch target to be up")
        wait_for_stack(lambda: running.query("modwatch_queue_stats_last_success_timestamp_seconds"), "queue statistics")
        # Traffic the API panels need: an authenticated read and a webhook with a bad signature.
        httpx.get(f"{running.api}/jobs/queues", headers={"X-API-Key": API_KEY}, timeout=10).raise_for_status()
        webhook = httpx.post(f"{running.api}/webhooks/mastodon_events", content=b'{"event": "status.created"}',
                             headers={"X-Hub-Signature": "sha256=00", "Content-Type": "application/json"}, timeout=10)
        assert webhook.status_code == 401
        yield running
    except BaseException:
        print(running.logs())
        raise
    finally:
        running.stop()
        connection.flushdb()


def substitute(expr: str, dashboard: dict) -> str:
    """Variables as Grafana sends them with every variable at "All"."""
    values = {**RANGES, **{f"${v['name']}": v["allValue"] for v in dashboard["templating"]["list"] if v.get("allValue")}}
    for variable in sorted(values, key=len, reverse=True):
        expr = expr.replace(variable, values[variable])
    return expr


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL ready to run)."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((dashboard["uid"], panel["title"], substitute(target["expr"], dashboard)))
    return queries


def test_every_rule_evaluates_without_error(stack):
    def rules_evaluated():
        groups = stack.prometheus.get("/api/v1/rules").json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = wait_for_stack(rules_evaluated, "every rule to be evaluated once")
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken


def test_every_dashboard_query_runs(stack):
    for _dashboard, _panel, expr in dashboard_queries():
        stack.query(expr)  # asserts status success, naming the expression otherwise


def any_answer(stack, exprs: list[str]) -> bool:
    return any(stack.query(expr) for expr in exprs)


def test_core_panels_show_data(stack):
    queries = dashboard_queries()
    for uid, titles in CORE_PANELS.items():
        for title in titles:
            exprs = [expr for dashboard, panel, expr in queries if (dashboard, panel) == (uid, title)]
            assert exprs, f"{uid} has no panel {title!r}"
            wait_for_stack(partial(any_answer, stack, exprs), f"data in {uid} / {title}")


def test_template_variables_have_values(stack):
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            selector, label = variable["definition"][len("label_values("):-1].rsplit(",", 1)
            expr = f"count by ({label.strip()}) ({substitute(selector, dashboard)})"
            wait_for_stack(partial(stack.query, expr), f"values of ${variable['name']} in {path.name}")


def test_queued_jobs_without_a_worker_raise_queue_stalled(stack):
    """Workers stopped for `webhooks` (none listens there), a job queued: ModwatchQueueStalled fires for it."""
    Queue("webhooks", connection=redis.Redis.from_url(REDIS_URL)).enqueue("modwatch.jobs.monitoring.record_queue_stats")

    def stalled_alert():
        alerts = stack.prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
        return [alert for alert in alerts
                if alert["labels"]["alertname"] == "ModwatchQueueStalled" and alert["labels"].get("queue") == "webhooks"]

    wait_for_stack(lambda: [a for a in stalled_alert() if a["state"] in ("pending", "firing")],
                   "ModwatchQueueStalled pending")
    firing = wait_for_stack(lambda: [a for a in stalled_alert() if a["state"] == "firing"],
                            "ModwatchQueueStalled firing")
    assert firing[0]["labels"]["severity"] == "page"
    assert firing[0]["annotations"]["dashboard_url"].endswith("/d/modwatch-queues?var-queue=webhooks")
    # The monitoring queue has a worker and keeps finishing jobs: it must not be reported stalled.
    assert not [a for a in stack.prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
                if a["labels"]["alertname"] == "ModwatchQueueStalled" and a["labels"].get("queue") == "monitoring"]
