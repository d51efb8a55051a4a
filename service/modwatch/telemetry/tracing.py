"""OpenTelemetry setup for each process kind.

Every process gets an SDK tracer provider, so trace ids exist for logs, job metadata and webhook
answers even without a collector. Spans leave the process only when an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), through a batch processor
with a short export timeout, so a slow or missing collector never holds up a request or a job.
The standard `OTEL_*` variables keep their meaning (sampler, service name, resource attributes,
headers, batch sizes); `OTEL_SDK_DISABLED=true` leaves the no-op provider in place.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from modwatch import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
# The SDK's default of 10 s would let an unreachable collector hold a work horse's exit that long.
EXPORT_TIMEOUT_SECONDS = 3.0
# Probes and scrapes: frequent, uninteresting, and they would drown the traces that matter.
UNTRACED_PATHS = r"^https?://[^/]+/(metrics|livez|readyz)/?(\?.*)?$"


def service_name(process: str) -> str:
    """`modwatch-api`, `modwatch-worker`, `modwatch-scheduler`, ... (OTEL_SERVICE_NAME overrides)."""
    return f"modwatch-{process}"


def build_resource(process: str) -> Resource:
    # The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) is merged last, so it wins.
    return Resource.create({SERVICE_NAME: service_name(process), SERVICE_VERSION: __version__}).merge(
        OTELResourceDetector().detect()
    )


def export_configured() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES) and (
        os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none"
    )


def build_provider(process: str) -> TracerProvider:
    """The provider for one process; the sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on)."""
    provider = TracerProvider(resource=build_resource(process))
    if export_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        timeout = None if any(os.environ.get(name) for name in TIMEOUT_VARIABLES) else EXPORT_TIMEOUT_SECONDS
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=timeout)))
    return provider


def configure(process: str) -> None:
    """Install the process's tracer provider as the global one (once per process)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    trace.set_tracer_provider(build_provider(process))


def flush(budget_seconds: float) -> None:
    """Export finished spans now, waiting at most `budget_seconds`.

    For processes that end with `os._exit` (RQ's work horse), where the batch processor never gets
    to export. The flush runs in a thread so the budget holds whatever the exporter does.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return
    flusher = threading.Thread(target=provider.force_flush, name="otel-flush", daemon=True)
    flusher.start()
    flusher.join(budget_seconds)


def instrument_app(app: FastAPI) -> None:
    """SERVER spans named by method and route template (`POST /webhooks/mastodon_events`)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"])
