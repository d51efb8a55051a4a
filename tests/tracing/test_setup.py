"""Each process's tracer provider: resource, OTLP export, standard OTEL_* variables, flushing."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from modwatch import __version__
from modwatch.telemetry import tracing
from tracing.otlp_receiver import Receiver


@pytest.fixture
def receiver(monkeypatch):
    receiver = Receiver()
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_EXPORTER_OTLP_HEADERS",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    yield receiver
    receiver.close()


def export_one(provider: TracerProvider) -> None:
    with provider.get_tracer("test").start_as_current_span("one"):
        pass
    provider.force_flush()
    provider.shutdown()


@pytest.mark.parametrize("process", ["api", "worker", "scheduler"])
def test_resource_names_the_process_and_version(process, monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    attributes = tracing.build_resource(process).attributes
    assert attributes["service.name"] == f"modwatch-{process}"
    assert attributes["service.version"] == __version__


def test_otel_service_name_and_resource_attributes_win(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "modwatch-canary")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
    attributes = tracing.build_resource("worker").attributes
    assert attributes["service.name"] == "modwatch-canary"
    assert attributes["deployment.environment.name"] == "staging"


def test_spans_are_exported_over_otlp_http_with_configured_headers(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-scope-orgid=modwatch")
    export_one(tracing.build_provider("scheduler"))
    [span] = receiver.spans
    assert (span["service"], span["name"]) == ("modwatch-scheduler", "one")
    assert receiver.headers[0]["x-scope-orgid"] == "modwatch"


def test_the_sampler_comes_from_the_environment(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    export_one(tracing.build_provider("api"))
    assert receiver.spans == []


def test_without_an_endpoint_nothing_is_exported_but_ids_exist(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.export_configured()
    provider = tracing.build_provider("worker")
    with provider.get_tracer("test").start_as_current_span("local") as span:
        assert span.get_span_context().is_valid  # logs and job metadata still get trace ids


def test_exporter_none_disables_export(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.export_configured()



def test_a_forked_child_keeps_the_resource_and_runs_no_detectors(receiver):
    """A work horse's spans go out under its worker's resource: the SDK's re-detection at fork
    (an entry point scan and a thread pool per horse) is skipped."""
    import os

    provider = tracing.build_provider("worker")
    resource = provider.resource
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, then leave without running pytest's exit handlers
        same = provider.resource is resource
        started_spans = provider.get_tracer("test").start_span("in child").is_recording()
        os.write(write_end, b"%d%d" % (same, started_spans))
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 2)
    os.waitpid(pid, 0)
    provider.shutdown()
    assert answer == b"11"
