"""Each Mastodon call makes one CLIENT span and metrics labelled by endpoint template, never the token."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from modwatch.mastodon import transport
from modwatch.mastodon.client import MastodonClient
from modwatch.mastodon.errors import GoneError
from modwatch.simulator.server import running


def test_spans_and_metrics(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(transport, "tracer", provider.get_tracer("modwatch.mastodon"))
    labels = {"endpoint": "/api/v1/accounts/:id/statuses", "method": "GET", "status": "404"}
    before = REGISTRY.get_sample_value("modwatch_mastodon_requests_total", labels) or 0
    with running(accounts=5) as sim:
        api = MastodonClient(sim.base_url, "sim-admin-token")
        api.admin_accounts("remote", limit=2)
        try:
            api.account_statuses("12345")
        except GoneError:
            pass
    ok, missing = exporter.get_finished_spans()
    assert ok.name == "GET /api/v2/admin/accounts" and ok.kind == SpanKind.CLIENT
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.attributes["url.full"].startswith(sim.base_url + "/api/v2/admin/accounts?")
    assert ok.attributes["server.address"] == "127.0.0.1" and ok.attributes["http.request.method"] == "GET"
    assert missing.name == "GET /api/v1/accounts/:id/statuses" and missing.attributes["error.type"] == "404"
    for span in (ok, missing):
        assert "sim-admin-token" not in str(dict(span.attributes))
    assert REGISTRY.get_sample_value("modwatch_mastodon_requests_total", labels) == before + 1


def test_endpoint_templates_hide_ids():
    assert transport.endpoint_template("/api/v1/accounts/117020565966271181/statuses") == "/api/v1/accounts/:id/statuses"
    assert transport.endpoint_template("/api/v1/reports/") == "/api/v1/reports"
    assert "REDACTED" in transport.redacted("https://x.example/oauth?access_token=abc&limit=1")
