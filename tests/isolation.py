"""What every test area shares: a modwatch environment of its own (Redis database, SQLite file)."""

from __future__ import annotations

from modwatch import connection
from modwatch.settings import get_settings
from modwatch.storage import db

# Settings a test must never inherit from the shell that runs it.
NOT_INHERITED = (
    "INSTANCE_BASE", "MASTODON_ACCESS_TOKEN", "DRY_RUN", "PANIC_STOP", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
)


def reset_caches() -> None:
    """Forget cached settings, the Redis pool and the database engine after the environment changed."""
    get_settings.cache_clear()
    connection.reset_pool()
    db.dispose_engine()
