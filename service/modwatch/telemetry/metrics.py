"""Every Prometheus metric modwatch exposes, defined once.

docs/metrics.md is the catalogue; tests/metrics/test_catalogue.py keeps the two in step.
Each process serves the default registry; which process fills which metric is in the catalogue.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

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
MASTODON_RATE_LIMITED = Counter("modwatch_mastodon_rate_limited", "429 answers from Mastodon.", ["endpoint"])
RATELIMIT_REMAINING = Gauge("modwatch_ratelimit_remaining", "Requests left in a rate-limit family's window, last answer.",
                            ["family"])
RATELIMIT_RESET = Gauge("modwatch_ratelimit_reset_timestamp_seconds", "When a rate-limit family's window ends, unix time.",
                        ["family"])
RATELIMIT_WAITS = Counter("modwatch_ratelimit_waits", "Requests the gate held back, by the family that refused.",
                          ["family"])

# Served by the scheduler process (the leader): what it found and repaired on its last loop.
RECURRING_JOBS = Gauge("modwatch_scheduler_recurring_jobs", "Recurring jobs registered in rq-scheduler, per the leader.", ["function"])
RECURRING_REPAIRS = Counter(
    "modwatch_scheduler_recurring_repairs", "Recurring job registrations the leader repaired, by reason.", ["function", "reason"]
)
RECURRING_RUNS_COALESCED = Counter(
    "modwatch_scheduler_recurring_runs_coalesced", "Due recurring runs folded into a run still waiting or running.", ["function"]
)

ACCOUNTS_SCANNED = Counter("modwatch_accounts_scanned", "Accounts analysed.", ["source"])
RULE_HITS = Counter("modwatch_rule_hits", "Rule matches.", ["rule"])
REPORTS = Counter("modwatch_reports", "Report decisions by outcome.", ["outcome"])
WAVES_ACTIVE = Gauge("modwatch_waves_active", "Fingerprints shared by enough young accounts within the wave window to be a wave.")
RULE_VERDICTS = Counter("modwatch_rule_verdicts", "Moderators' verdicts on modwatch's reports, per rule that contributed.",
                        ["rule", "verdict"])

# The streaming consumer (`modwatch stream`).
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
DECISION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
STREAM_ACTIVE = Gauge("modwatch_stream_active", "1 on the stream consumer holding the lease, 0 on a standby.")
STREAM_CONNECTED = Gauge("modwatch_stream_connected", "1 while the stream is connected.", ["stream"])
STREAM_EVENTS = Counter("modwatch_stream_events", "Streaming events received, by type.", ["stream", "event"])
STREAM_LAG = Histogram("modwatch_stream_lag_seconds", "Now minus a post's created_at when it arrives.", ["stream"],
                       buckets=LAG_BUCKETS)
STREAM_RECONNECTS = Counter("modwatch_stream_reconnects", "Connections lost or refused, each followed by a reconnect.",
                            ["stream", "reason"])
STREAM_GAP_FILLED = Counter("modwatch_stream_gap_filled_posts", "Posts fetched from the timeline to fill a gap.", ["stream"])
STREAM_GAPS_UNFILLED = Counter("modwatch_stream_gaps_unfilled", "Gaps the page budget did not cover to the end.", ["stream"])
STREAM_POSTS = Counter("modwatch_stream_posts", "Streamed posts by decision.", ["decision"])
STREAM_BATCH_SIZE = Histogram("modwatch_stream_batch_size", "Posts per analysed batch.", buckets=BATCH_SIZE_BUCKETS)
STREAM_BATCH_DURATION = Histogram("modwatch_stream_batch_duration_seconds", "Time to analyse and record one batch.",
                                  buckets=DECISION_BUCKETS)
STREAM_DECISION_LATENCY = Histogram("modwatch_stream_decision_latency_seconds",
                                    "From a post's event received to its decision recorded.", buckets=DECISION_BUCKETS)


def set_build_info(process: str) -> None:
    BUILD_INFO.labels(version=__version__, process=process).set(1)


def family_of(metric: MetricWrapperBase) -> Metric:
    """The one family a metric object describes: its name (without `_total`), type and help."""
    return next(iter(metric.describe()))


# Every metric object above by family name, with its type.
DEFINED: dict[str, MetricWrapperBase] = {
    family_of(metric).name: metric for metric in list(globals().values()) if isinstance(metric, MetricWrapperBase)
}
TYPES: dict[str, str] = {name: family_of(metric).type for name, metric in DEFINED.items()}

# Metric changes made in a forked work horse die with it (RQ ends the horse with os._exit). The
# horse starts from empty labelled metrics (`start_horse`), sends what it holds at the end to its
# parent worker (`changes_since`), and the parent applies it to its own registry, which is the one
# /metrics serves. A gauge a horse changes is `set`, never incremented: its value is sent as it is.
# (metric name, label values) -> values: a counter's or gauge's value, or a histogram's bucket
# counts (not cumulative) followed by its sum.
Snapshot = dict[tuple[str, tuple[str, ...]], list[float]]
# [metric name, label values, values]: a counter's increase, a gauge's new value, or the increases
# of a histogram's bucket counts and sum.
Change = list[Any]


def _series(name: str, metric: MetricWrapperBase) -> dict[tuple[str, ...], list[float]]:
    """Label values -> values of each series of `metric`, read through its public collect()."""
    values: dict[tuple[str, ...], list[float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = tuple(value for key, value in sample.labels.items() if key != "le")
            if TYPES[name] != "histogram":
                values[labels] = [sample.value]
            elif sample.name.endswith("_bucket"):
                values.setdefault(labels, []).append(sample.value)  # cumulative, in bucket order
            elif sample.name.endswith("_sum"):
                sums[labels] = sample.value
    for labels, total in sums.items():
        cumulative = values[labels]
        values[labels] = [count - below for below, count in zip([0.0, *cumulative], cumulative)] + [total]
    return values


# Functions that keep metric series (labels() validates its arguments on every call): a work horse
# empties them with the metrics (`start_horse`).
_SERIES_CACHES: list[Any] = []


def kept_series(function: Callable[..., Any]) -> Callable[..., Any]:
    """`functools.lru_cache` for a function returning metric series, forgotten in each work horse."""
    cached = functools.lru_cache(maxsize=1024)(function)
    _SERIES_CACHES.append(cached)
    return cached


def start_horse() -> Snapshot:
    """In a work horse, first: drop the labelled series inherited from the worker (the worker keeps
    its own), so that what the horse holds at the end is what it changed; returns the baseline of
    the few unlabelled metrics, which cannot be emptied. Both through the public API, and cheap:
    a snapshot of every series costs milliseconds (collect() builds every sample)."""
    for metric in DEFINED.values():
        try:
            metric.clear()  # a no-op for an unlabelled metric...
        except AttributeError:  # ...which prometheus-client before 0.22 refuses to clear
            pass
    for cache in _SERIES_CACHES:
        cache.cache_clear()
    return snapshot()


def snapshot() -> Snapshot:
    return {(name, label_values): values
            for name, metric in DEFINED.items() for label_values, values in _series(name, metric).items()}


def changes_since(before: Snapshot) -> list[Change]:
    changes = []
    for (name, label_values), values in snapshot().items():
        old = before.get((name, label_values))
        if TYPES[name] == "gauge":
            if values != old:
                changes.append([name, list(label_values), values])
            continue
        increase = [new - previous for new, previous in zip(values, old or [0.0] * len(values))]
        if any(increase):
            changes.append([name, list(label_values), increase])
    return changes


def apply_changes(changes: Iterable[Change]) -> None:
    for name, label_values, values in changes:
        if TYPES[name] == "histogram":
            _handed_over(name).add(tuple(label_values), values)
            continue
        metric = DEFINED[name]
        series = metric.labels(*label_values) if label_values else metric
        if isinstance(series, Counter):
            series.inc(values[0])
        elif isinstance(series, Gauge):
            series.set(values[0])


class HandedOverHistogram(Collector):
    """A histogram as a worker serves it: its own observations plus the bucket counts and sums its
    work horses reported.

    prometheus_client adds to a histogram one observation at a time, and a horse reports counts per
    bucket: they are kept here and added to the metric's own samples when it is collected. In the
    worker this collector takes the metric's place in the default registry (the first time a horse
    reports a change to it); snapshots keep reading the metric itself, so a horse's changes are
    always measured against what it inherited.
    """

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric
        self.added: dict[tuple[str, ...], list[float]] = {}  # label values -> bucket counts, then sum
        self.lock = threading.Lock()

    def add(self, label_values: tuple[str, ...], values: list[float]) -> None:
        with self.lock:
            if label_values not in self.added:
                if label_values:
                    self.metric.labels(*label_values)  # the series exists, with its buckets, from now on
                self.added[label_values] = [0.0] * len(values)
            self.added[label_values] = [old + new for old, new in zip(self.added[label_values], values)]

    def describe(self) -> Iterable[Metric]:
        return self.metric.describe()

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            added = {labels: list(values) for labels, values in self.added.items()}
        for family in self.metric.collect():
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            bucket_index: dict[tuple[str, ...], int] = {}
            for sample in family.samples:
                labels = tuple(value for key, value in sample.labels.items() if key != "le")
                extra = added.get(labels)
                if extra is not None:
                    *counts, total = extra
                    if sample.name.endswith("_bucket"):
                        index = bucket_index[labels] = bucket_index.get(labels, -1) + 1
                        sample = sample._replace(value=sample.value + sum(counts[:index + 1]))
                    elif sample.name.endswith("_count"):
                        sample = sample._replace(value=sample.value + sum(counts))
                    elif sample.name.endswith("_sum"):
                        sample = sample._replace(value=sample.value + total)
                merged.samples.append(sample)
            yield merged


_HANDED_OVER: dict[str, HandedOverHistogram] = {}


def _handed_over(name: str) -> HandedOverHistogram:
    collector = _HANDED_OVER.get(name)
    if collector is None:
        metric = DEFINED[name]
        collector = _HANDED_OVER[name] = HandedOverHistogram(metric)
        REGISTRY.unregister(metric)
        REGISTRY.register(collector)
    return collector


# Held while /metrics reads the metrics and while the worker forks: a fork in the middle of a
# scrape would copy a metric's lock in its locked state, and the work horse would hang on it.
FORK_LOCK = threading.Lock()


class ForkSafeRegistry(Collector):
    """The default registry read under FORK_LOCK: what workers and the scheduler serve on METRICS_PORT."""

    def __init__(self, names: Iterable[str] | None = None) -> None:
        self.names = names

    def collect(self) -> Iterable[Any]:
        with FORK_LOCK:
            source = REGISTRY if self.names is None else REGISTRY.restricted_registry(self.names)
            return list(source.collect())

    def restricted_registry(self, names: Iterable[str]) -> "ForkSafeRegistry":
        return ForkSafeRegistry(names)
