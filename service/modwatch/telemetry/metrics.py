"""Every Prometheus metric modwatch exposes, defined once.

docs/metrics.md is the catalogue; tests/metrics/test_catalogue.py keeps the two in step.
Each process serves the default registry; which process fills which metric is in the catalogue.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from modwatch import __version__

# `_created` series double the cardinality and no dashboard or alert reads them.
disable_created_metrics()

# Waiting covers 50 ms to 30 min: a stuck queue is measured in minutes.
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

BUILD_INFO = Gauge("modwatch_build_info", "Always 1; the running version.", ["version", "process"])

HTTP_REQUESTS = Counter("modwatch_http_requests", "HTTP requests by route template.", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "modwatch_http_request_duration_seconds", "HTTP request latency by route template.",
    ["route", "method", "status"], buckets=HTTP_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter("modwatch_webhook_deliveries", "Webhook deliveries by event and outcome.", ["event", "outcome"])

JOBS_ENQUEUED = Counter("modwatch_jobs_enqueued", "Jobs put on a queue by this process.", ["queue", "function"])
JOBS_FINISHED = Counter("modwatch_jobs_finished", "Jobs that ended an attempt, by outcome.", ["queue", "function", "outcome"])
JOB_WAIT = Histogram("modwatch_job_wait_seconds", "Time from enqueue to start.", ["queue", "function"], buckets=WAIT_BUCKETS)
JOB_DURATION = Histogram(
    "modwatch_job_duration_seconds", "Run time of a job attempt.", ["queue", "function", "outcome"], buckets=RUN_BUCKETS
)

MASTODON_REQUESTS = Counter(
    "modwatch_mastodon_requests", "Mastodon API calls by endpoint template and status.", ["endpoint", "method", "status"]
)
MASTODON_DURATION = Histogram(
    "modwatch_mastodon_request_duration_seconds", "Mastodon API call latency.", ["endpoint", "method"], buckets=HTTP_BUCKETS
)
MASTODON_RATELIMIT_REMAINING = Gauge("modwatch_mastodon_ratelimit_remaining", "X-RateLimit-Remaining of the last answer.")
MASTODON_RATE_LIMITED = Counter("modwatch_mastodon_rate_limited", "429 answers from Mastodon.", ["endpoint"])

ACCOUNTS_SCANNED = Counter("modwatch_accounts_scanned", "Accounts analysed.", ["source"])
RULE_HITS = Counter("modwatch_rule_hits", "Rule matches.", ["rule"])
REPORTS = Counter("modwatch_reports", "Report decisions by outcome.", ["outcome"])


def set_build_info(process: str) -> None:
    BUILD_INFO.labels(version=__version__, process=process).set(1)
