"""Fixtures for the tracing tests: spans in memory, our own Redis database (3), job functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from isolation import redis_db_url


REDIS_URL = redis_db_url(3)
API_KEY = "tracing-test-api-key"
WEBHOOK_SECRET = "0123456789abcdef0123456789abcdef01234567"  # the shared recordings' test-only secret
REPO = Path(__file__).resolve().parents[2]

class RecordingExporter(InMemorySpanExporter):
    """Keeps spans only while a test asks for them, so other suites' spans do not pile up."""

    recording = False

    def export(self, spans):
        return super().export(spans) if self.recording else SpanExportResult.SUCCESS


_exporter = RecordingExporter()


def _install_exporter() -> None:
    """Spans of this process go to `_exporter`, whichever test set the global provider first."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))


_install_exporter()


@pytest.fixture
def spans():
    _exporter.clear()
    _exporter.recording = True
    yield _exporter
    _exporter.recording = False
    _exporter.clear()


@pytest.fixture
def tracing_env(modwatch_env):
    return modwatch_env(REDIS_URL, API_KEY=API_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET)


@pytest.fixture
def redis_conn(tracing_env):
    return redis.Redis.from_url(REDIS_URL)
