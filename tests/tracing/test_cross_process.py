"""One trace across processes: a real API, a real forking worker and the Mastodon simulator export
OTLP/HTTP to a receiver run by this test; a signed webhook becomes one trace from the HTTP request
to the Mastodon call the job makes. The delivery is a `report.created`: its job fetches the reported account's
statuses fresh, while a `status.created` is analysed from the delivered post with no Mastodon call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from isolation import free_port, mastodon_recordings, wait_for, wait_http
from tracing.conftest import API_KEY, REPO
from tracing.otlp_receiver import Receiver

WEBHOOKS = mastodon_recordings() / "webhooks"
TESTS = REPO / "tests"
SIMULATOR_TOKEN = "tracing-test-admin-token"
REQUEST_ID = "cross-process-test-1"
WAIT_SECONDS = 60


def modwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "modwatch.cli", *args]


@pytest.fixture
def stack(tracing_env, tmp_path):
    """Receiver, simulator and API processes; yields what the test needs to talk to them."""
    receiver = Receiver()
    simulator_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        **tracing_env,
        "INSTANCE_BASE": f"http://127.0.0.1:{simulator_port}",
        "MASTODON_ACCESS_TOKEN": SIMULATOR_TOKEN,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    processes = []
    try:
        processes.append(subprocess.Popen(
            modwatch("simulate", "--port", str(simulator_port), "--admin-token", SIMULATOR_TOKEN),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        processes.append(subprocess.Popen(
            modwatch("api", "--host", "127.0.0.1", "--port", str(api_port)),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{simulator_port}/api/v1/instance", processes[0], WAIT_SECONDS)
        wait_http(f"http://127.0.0.1:{api_port}/livez", processes[1], WAIT_SECONDS)
        yield {"env": env, "api": f"http://127.0.0.1:{api_port}", "receiver": receiver}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        receiver.close()


def signature(event: str) -> str:
    for line in (WEBHOOKS / "signatures.txt").read_text().splitlines():
        if line.startswith(f"{event}.body.json"):
            return line.split("X-Hub-Signature: ")[1].split()[0]
    raise LookupError(event)


def ancestors(span: dict, by_id: dict[str, dict]) -> list[str]:
    chain = []
    while span["parent_span_id"] in by_id:
        span = by_id[span["parent_span_id"]]
        chain.append(span["name"])
    return chain


def test_webhook_to_mastodon_call_is_one_trace(stack):
    api, receiver = stack["api"], stack["receiver"]
    body = (WEBHOOKS / "report.created.body.json").read_bytes()
    answer = httpx.post(f"{api}/webhooks/mastodon_events", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": signature("report.created"), "X-Request-ID": REQUEST_ID,
    })
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-ID"] == REQUEST_ID
    job_id, trace_id = answer.json()["job_id"], answer.json()["trace_id"]
    assert trace_id and len(trace_id) == 32

    worker = subprocess.run(modwatch("worker", "--burst", "webhooks"), env=stack["env"],
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-3000:]

    def whole_trace():
        spans = receiver.trace(trace_id)
        kinds = {(span["service"], span["kind"]) for span in spans}
        wanted = {("modwatch-api", "SPAN_KIND_SERVER"), ("modwatch-api", "SPAN_KIND_PRODUCER"),
                  ("modwatch-worker", "SPAN_KIND_CONSUMER"), ("modwatch-worker", "SPAN_KIND_CLIENT")}
        fetched = any(span["name"].startswith("GET /api/v1/accounts/:id/statuses") for span in spans)
        return spans if wanted <= kinds and fetched else None

    spans = wait_for(whole_trace, f"the server, send, process and statuses-fetch spans of trace {trace_id}",
                     WAIT_SECONDS)
    by_name = {span["name"]: span for span in spans}
    by_id = {span["span_id"]: span for span in spans}
    server = by_name["POST /webhooks/mastodon_events"]
    send, process = by_name["send webhooks"], by_name["process webhooks"]
    assert server["parent_span_id"] == ""  # the trace starts at the request
    assert send["parent_span_id"] == server["span_id"]
    assert process["parent_span_id"] == send["span_id"]
    assert process["attributes"]["messaging.message.id"] == job_id
    assert process["attributes"]["messaging.rq.attempt"] == 1
    client_calls = [span for span in spans if span["kind"] == "SPAN_KIND_CLIENT"]
    assert {span["service"] for span in client_calls} == {"modwatch-worker"}
    # The job checks who it is (never analyse our own reports), then fetches the reported account's posts.
    mastodon_call = next(span for span in client_calls if span["name"].startswith("GET /api/v1/accounts/:id/statuses"))
    assert "process webhooks" in ancestors(mastodon_call, by_id)
    assert SIMULATOR_TOKEN not in json.dumps(spans)

    detail = httpx.get(f"{api}/jobs/jobs/{job_id}", headers={"X-API-Key": API_KEY}, timeout=10).json()
    assert detail["trace_id"] == trace_id
    assert detail["trace_ids"] == {"created": trace_id, "executions": [trace_id]}
    assert trace_id in detail["trace_url"]

    job_lines = [json.loads(line) for line in worker.stderr.splitlines()
                 if line.startswith("{") and json.loads(line).get("job_id") == job_id]
    assert job_lines, worker.stderr[-3000:]
    for line in job_lines:
        assert (line["trace_id"], line["queue"], line["request_id"]) == (trace_id, "webhooks", REQUEST_ID), line
        assert len(line["span_id"]) == 16
    assert SIMULATOR_TOKEN not in worker.stderr


def test_an_unreachable_collector_fails_no_job(tracing_env):
    from modwatch.jobs.queues import WEBHOOKS as QUEUE
    from modwatch.jobs.queues import get_queue
    from tracing import jobfuncs

    job = get_queue(QUEUE).enqueue(jobfuncs.add, 2, 3)
    env = {
        **os.environ,
        **tracing_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    worker = subprocess.run(modwatch("worker", "--burst", QUEUE), env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-3000:]
    job.refresh()
    assert (job.get_status(), job.return_value()) == ("finished", 5)


def test_scheduler_process_sends_recurring_runs_as_root_spans(tracing_env):
    receiver = Receiver()
    try:
        env = {**os.environ, **tracing_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        scheduler = subprocess.run(modwatch("scheduler", "--burst"), env=env, capture_output=True, text=True, timeout=120)
        assert scheduler.returncode == 0, scheduler.stderr[-3000:]
        sends = wait_for(lambda: [span for span in receiver.spans if span["name"] == "send monitoring"],
                         "the scheduler's send span", WAIT_SECONDS)
    finally:
        receiver.close()
    [send] = sends
    assert send["service"] == "modwatch-scheduler"
    assert send["kind"] == "SPAN_KIND_PRODUCER"
    assert send["parent_span_id"] == ""
    assert send["attributes"]["messaging.message.id"] == "recurring-record_queue_stats"
