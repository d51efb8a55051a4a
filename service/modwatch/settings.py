"""One settings object, read from the environment and `.env`.

Every variable name here is a contract with operators, docker-compose and the docs:
change one and `tests/core/test_settings.py` and the compose static check fail.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")
DEFAULT_TRACE_URL_TEMPLATE = (
    "http://localhost:3000/explore?schemaVersion=1&panes="
    '{{"trace":{{"datasource":"tempo","queries":[{{"refId":"A","datasource":{{"type":"tempo","uid":"tempo"}},'
    '"queryType":"traceql","query":"{trace_id}"}}],"range":{{"from":"now-7d","to":"now"}}}}}}'
)


# The public streams Mastodon.py's stream_public() reaches (local=, remote=).
STREAM_NAMES = ("public", "public:local", "public:remote")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    redis_url: str | None = Field(None, description="Redis URL; unset means localhost, or an embedded server under `modwatch run`.")
    database_url: str = Field("sqlite:///./var/modwatch.db", description="SQLAlchemy URL (SQLite or PostgreSQL).")
    instance_base: str | None = Field(None, description="Base URL of the Mastodon instance, e.g. https://mastodon.example.")
    mastodon_access_token: SecretStr | None = Field(None, description="Admin token with admin:read and write:reports scopes.")
    webhook_secret: SecretStr | None = Field(None, description="Secret Mastodon signs webhooks with; unset rejects every webhook.")
    api_key: SecretStr | None = Field(None, description="Key for /jobs, /moderation and admin routes.")
    dry_run: bool = Field(True, description="Record what would be reported without filing it.")
    panic_stop: bool = Field(False, description="Stop every Mastodon write and all polling.")
    poll_admin_accounts_interval: int = Field(30, gt=0, description="Seconds between remote admin account polls.")
    poll_admin_accounts_local_interval: int = Field(30, gt=0, description="Seconds between local admin account polls.")
    report_outcomes_interval: int = Field(300, gt=0, description="Seconds between reads of moderators' verdicts on modwatch's reports.")
    worker_redis_outage_seconds: int = Field(120, ge=0, description=(
        "Seconds a worker and its running job keep retrying Redis while it is unreachable, before the worker exits "
        "(the API answers 503 at once instead)."))
    queue_stats_interval: int = Field(15, gt=0, description="Seconds between queue statistics collections.")
    report_filing_interval: int = Field(15, gt=0, description="Seconds between runs filing the report decisions that wait.")
    poll_max_pages: int = Field(5, gt=0, le=100, description="Admin account pages fetched per poll run.")
    poll_paging_share: float = Field(0.5, gt=0, le=1, description=(
        "Share of Mastodon's paging limit (300 requests with min_id/max_id per 15 minutes per user, shared with "
        "the moderators' web UI) that polls may use; the rest is left to people."))
    report_threshold: float = Field(10.0, gt=0, description="Account score at which a report is filed.")
    report_forward: bool = Field(False, description="Forward reports about remote accounts to their instance.")
    rules_file: Path = Field(DEFAULT_RULES_FILE, description="YAML moderation rules file.")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Port of /metrics of a worker, the scheduler or the stream consumer; unset: worker 9100, scheduler 9101, stream 9102, the first free from 9110 when taken; 0 disables.")
    metrics_host: str = Field("127.0.0.1", description="Address the worker and scheduler /metrics listen on (0.0.0.0 in a container).")
    local_traces: bool = Field(False, description="Keep recent traces (1 h) in Redis and show them at /jobs/jobs/{id}/trace; `modwatch run` sets it when no OTLP endpoint is configured.")
    trace_url_template: str = Field(DEFAULT_TRACE_URL_TEMPLATE, description="Link to a trace; `{trace_id}` is substituted.")
    log_level: str = Field("INFO", description="Log level.")
    log_format: str = Field("auto", pattern="^(auto|json|console)$", description="auto: pretty on a terminal, JSON otherwise.")
    dashboard_username: str = Field("admin", description="rq-dashboard basic auth user.")
    dashboard_password: SecretStr | None = Field(None, description="rq-dashboard basic auth password (defaults to API_KEY).")
    dashboard_read_only: bool = Field(True, description="rq-dashboard refuses every state-changing action (docs/security.md).")
    webhook_max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted webhook body.")
    webhook_max_concurrency: int = Field(16, gt=0, description="Webhook deliveries handled at once (of the API's 40 threads).")
    webhook_queue_timeout: float = Field(5.0, gt=0, description="Seconds a delivery waits for a free slot before a 503 with Retry-After.")
    request_header_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's line and headers (else 408).")
    request_body_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request's body (else 408).")
    request_max_header_bytes: int = Field(16_384, gt=0, description="Largest request line plus headers (else 431).")
    request_max_headers: int = Field(100, gt=0, description="Most header fields in a request (else 431).")
    request_max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body outside webhooks (else 413).")
    streams: str = Field("public:remote", description="Streams `modwatch stream` consumes, comma-separated: public, public:local, public:remote.")
    stream_batch_size: int = Field(200, gt=0, le=10_000, description="Posts analysed together at most.")
    stream_batch_wait: float = Field(0.2, gt=0, le=10, description="Seconds a post waits for its batch to fill at most.")
    stream_lease_seconds: int = Field(5, ge=2, le=300, description="Lease of the active stream consumer; a standby takes over after it lapses.")
    stream_read_timeout: float = Field(60.0, gt=0, description="Seconds without a byte (Mastodon sends a heartbeat every 15) before reconnecting.")
    stream_gap_max_pages: int = Field(10, ge=0, le=1000, description="Timeline pages (40 posts) fetched to fill one gap at most.")

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in STREAM_NAMES]
        if not names or unknown:
            raise ValueError(f"must name streams among {', '.join(STREAM_NAMES)}")
        return ",".join(dict.fromkeys(names))

    @property
    def stream_names(self) -> list[str]:
        return self.streams.split(",")

    @field_validator("instance_base")
    @classmethod
    def _instance_base_is_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://localhost:6379/0"


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def env_names() -> set[str]:
    """Every environment variable the settings read."""
    return {name.upper() for name in Settings.model_fields}
