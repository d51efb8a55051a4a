"""Log lines lead to traces: trace and span ids, job and request context, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import structlog
from opentelemetry import trace

from modwatch.jobs.queues import WEBHOOKS, get_queue
from modwatch.jobs.worker import build_worker
from modwatch.telemetry import logging as modwatch_logging
from tracing import jobfuncs

tracer = trace.get_tracer("tests.tracing")


@pytest.fixture
def json_logs():
    """modwatch's JSON logging into a buffer; the previous set-up is restored afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    modwatch_logging.configure("INFO", "json")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]

    yield lines
    root.handlers[:], root.level = handlers, level
    structlog.configure(**config)


def test_lines_in_a_span_carry_its_ids(json_logs):
    with tracer.start_as_current_span("work") as span:
        structlog.get_logger("tests.tracing").info("from_structlog")
        logging.getLogger("rq.worker").info("from the standard library")
    ids = (format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x"))
    lines = json_logs()
    assert [line["event"] for line in lines] == ["from_structlog", "from the standard library"]
    assert all((line["trace_id"], line["span_id"]) == ids for line in lines)


def test_lines_outside_a_span_have_no_trace_ids(json_logs):
    structlog.get_logger("tests.tracing").info("idle")
    [line] = json_logs()
    assert "trace_id" not in line and "span_id" not in line


def test_rq_lines_during_a_job_carry_job_queue_and_trace(redis_conn, spans, json_logs):
    job = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2)
    build_worker(redis_conn, [WEBHOOKS], simple=True).work(burst=True)
    [process] = [span for span in spans.get_finished_spans() if span.name == "process webhooks"]
    in_job = [line for line in json_logs() if line.get("job_id") == job.id]
    assert any("Job OK" in line["event"] for line in in_job)
    for line in in_job:
        assert line["queue"] == WEBHOOKS
        assert line["trace_id"] == format(process.context.trace_id, "032x")
        assert "request_id" not in line  # no request created this job


def test_lines_of_a_job_a_request_created_carry_its_request_id(redis_conn, json_logs):
    from modwatch.telemetry.request_context import _request_id

    token = _request_id.set("req-42")
    try:
        job = get_queue(WEBHOOKS).enqueue(jobfuncs.add, 1, 2)
    finally:
        _request_id.reset(token)
    build_worker(redis_conn, [WEBHOOKS], simple=True).work(burst=True)
    in_job = [line for line in json_logs() if line.get("job_id") == job.id]
    assert in_job and all(line["request_id"] == "req-42" for line in in_job)


def test_secrets_are_redacted(json_logs):
    structlog.get_logger("tests.tracing").info(
        "calling",
        access_token="abc123",
        x_api_key="k3y",
        header="Authorization: Bearer s3cr3t-t0ken",
        lower="authorization: bearer l0wer-t0ken",
        url="https://mastodon.example/api/v1/accounts?access_token=leaky&limit=5",
        redis="redis://user:hunter2@redis:6379/0",
    )
    [line] = json_logs()
    text = json.dumps(line)
    for secret in ("abc123", "k3y", "s3cr3t-t0ken", "l0wer-t0ken", "leaky", "hunter2"):
        assert secret not in text
    assert line["url"].endswith("access_token=[redacted]&limit=5")
    assert line["redis"] == "redis://user:[redacted]@redis:6379/0"


def test_secrets_in_tracebacks_are_redacted(json_logs):
    try:
        raise RuntimeError("GET https://mastodon.example/api?access_token=in-a-traceback failed")
    except RuntimeError:
        structlog.get_logger("tests.tracing").exception("failed")
    [line] = json_logs()
    assert "in-a-traceback" not in json.dumps(line)


def test_standard_library_lines_keep_level_logger_and_exception(json_logs):
    try:
        raise ValueError("GET https://mastodon.example/api?access_token=from-rq failed")
    except ValueError:
        logging.getLogger("rq.worker").error("job %s failed", "wh-1", exc_info=True)
    [line] = json_logs()
    assert (line["event"], line["level"], line["logger"]) == ("job wh-1 failed", "error", "rq.worker")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    assert "ValueError: GET" in line["exception"] and "from-rq" not in json.dumps(line)


def test_values_orjson_refuses_are_still_written(json_logs):
    structlog.get_logger("tests.tracing").info("huge", number=2**70, key_types={1: "one"})
    [line] = json_logs()
    assert line["number"] == 2**70 and line["key_types"] == {"1": "one"}
