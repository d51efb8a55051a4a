import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from isolation import wait_for
from modwatch.run import free_port


@pytest.fixture
def fresh_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "API_KEY", "WEBHOOK_SECRET", "INSTANCE_BASE",
                          "MASTODON_ACCESS_TOKEN", "METRICS_PORT", "LOCAL_TRACES", "TRACE_URL_TEMPLATE",
                          "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}}
    return env


def send_webhook(env, *args):
    return subprocess.run([sys.executable, "-m", "modwatch.cli", "send-webhook", "--timeout", "180", *args],
                          env=env, capture_output=True, text=True, timeout=240)


def test_send_webhook_without_a_secret_says_where_one_comes_from(fresh_dir):
    result = send_webhook(fresh_dir)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("modwatch send-webhook: no webhook secret: pass --secret, set WEBHOOK_SECRET, "
                             "or start `modwatch run` in this directory\n")


def test_run_with_nothing_configured_starts_everything_and_stops_cleanly(fresh_dir, tmp_path):
    ports = {name: free_port() for name in ("api", "dashboard", "simulator", "worker", "scheduler", "stream")}
    closed_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: an embedded Redis must start
    run = subprocess.Popen(
        [sys.executable, "-m", "modwatch.cli", "run", "--port", str(ports["api"]),
         "--dashboard-port", str(ports["dashboard"]), "--simulator-port", str(ports["simulator"]),
         "--worker-metrics-port", str(ports["worker"]), "--scheduler-metrics-port", str(ports["scheduler"]),
         "--stream-metrics-port", str(ports["stream"]), "--redis-probe-url", closed_redis],
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
        # `modwatch stream` consumes the simulator's streaming API.
        wait_for(lambda: 'modwatch_stream_connected{stream="public:remote"} 1.0' in httpx.get(
            f"http://127.0.0.1:{ports['stream']}/metrics").text, "the stream consumer to connect", timeout=90,
            ignoring=(httpx.HTTPError,))
        assert (tmp_path / "var" / "modwatch.db").exists()
        # The banner shows the generated webhook secret; send-webhook finds it (and the API key) in var/run.json.
        secret = re.search(r"^  webhook secret\s+([0-9a-f]{64})  \(generated", text, re.MULTILINE).group(1)
        assert (tmp_path / "var" / "run.json").stat().st_mode & 0o777 == 0o600
        sent = send_webhook(fresh_dir)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert re.search(r"^sent status\.created for status \d+ by @\S+ to .*: 202, job wh-status_created-\d+",
                         sent.stdout, re.MULTILINE), sent.stdout
        assert re.search(r"^job wh-status_created-\d+: finished$", sent.stdout, re.MULTILINE), sent.stdout
        assert "'outcome': 'analysed'" in sent.stdout  # a post of the simulator: its author exists
        # No trace backend configured: the job's trace is kept locally and shown by the API.
        assert "traces                kept 1 h in Redis" in text
        job_id = re.search(r"^job (wh-status_created-\d+): finished$", sent.stdout, re.MULTILINE).group(1)
        trace_url = f"{base}/jobs/jobs/{job_id}/trace"

        def spans_of_both_processes():
            traces = httpx.get(trace_url, headers={"X-API-Key": api_key}).json()["traces"]
            spans = [(span["service"], span["kind"], span["name"]) for trace in traces for span in trace["spans"]]
            return spans if {"modwatch-api", "modwatch-worker"} <= {service for service, _, _ in spans} else None

        spans = wait_for(spans_of_both_processes, "the webhook's spans from the API and the worker", 30)
        assert ("modwatch-api", "SERVER", "POST /webhooks/mastodon_events") in spans
        assert ("modwatch-worker", "CONSUMER", "process webhooks") in spans
        browser = {"Accept": "text/html,application/xhtml+xml"}
        challenged = httpx.get(trace_url, headers=browser)
        assert challenged.status_code == 401 and challenged.headers["WWW-Authenticate"] == 'Basic realm="modwatch"'
        page = httpx.get(trace_url, headers=browser, auth=("admin", api_key))
        assert page.headers["content-type"].startswith("text/html") and "process webhooks" in page.text
        forged = send_webhook(fresh_dir, "--secret", secret[::-1])
        assert forged.returncode == 1 and "answered 401" in forged.stdout
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 6  # redis, simulator, api, worker, scheduler, dashboard
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(timeout=60)
    assert code == 0
    assert not (tmp_path / "var" / "run.json").exists()
    time.sleep(0.5)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("configured, banner, local", [
    ({}, "kept 1 h in Redis: http://x/jobs/jobs/<job id>/trace", "true"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "OTLP to http://collector:4318", None),
    ({"TRACE_URL_TEMPLATE": "https://grafana/{trace_id}"}, "not exported (no OTLP endpoint)", None),
    ({"LOCAL_TRACES": "false"}, "not exported (no OTLP endpoint)", None),
])
def test_run_keeps_traces_locally_only_without_a_trace_backend(monkeypatch, tmp_path, configured, banner, local):
    from modwatch.run import _trace_destination
    from modwatch.settings import load_settings

    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "TRACE_URL_TEMPLATE",
                 "LOCAL_TRACES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in configured.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    assert banner in _trace_destination(load_settings(), env, "http://x")
    assert env.get("LOCAL_TRACES") == (local if local else configured.get("LOCAL_TRACES"))
