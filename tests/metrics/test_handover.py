"""A work horse's metric changes, measured and applied through prometheus_client's public API: counters and
gauges by inc()/set(), histograms through HandedOverHistogram, which adds the reported bucket counts and sums to
the metric's own samples when /metrics is collected."""

from __future__ import annotations

from prometheus_client import REGISTRY

from modwatch.telemetry import metrics


def scraped(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_changes_since_a_snapshot_are_what_was_recorded_after_it():
    before = metrics.snapshot()
    metrics.MASTODON_DURATION.labels(endpoint="/handover/a", method="GET").observe(0.02)
    metrics.MASTODON_DURATION.labels(endpoint="/handover/a", method="GET").observe(3)
    metrics.RULE_HITS.labels(rule="handover-a").inc(2)
    changes = {(name, tuple(labels)): values for name, labels, values in metrics.changes_since(before)}
    assert changes[("modwatch_rule_hits", ("handover-a",))] == [2.0]
    histogram = changes[("modwatch_mastodon_request_duration_seconds", ("/handover/a", "GET"))]
    buckets = metrics.HTTP_BUCKETS
    assert len(histogram) == len(buckets) + 2  # every bucket, +Inf, then the sum
    assert histogram[buckets.index(0.025)] == 1 and histogram[buckets.index(5)] == 1
    assert sum(histogram[:-1]) == 2 and histogram[-1] == 3.02


def test_a_horses_histogram_changes_are_served_by_the_worker():
    labels = {"endpoint": "/handover/b", "method": "POST"}
    name = "modwatch_mastodon_request_duration_seconds"
    metrics.MASTODON_DURATION.labels(**labels).observe(0.2)  # the worker's own observation
    counts = [0.0] * (len(metrics.HTTP_BUCKETS) + 1)
    counts[metrics.HTTP_BUCKETS.index(0.01)] = 3
    counts[-1] = 1  # one above the largest bucket
    for _ in range(2):  # two horses
        metrics.apply_changes([[name, list(labels.values()), [*counts, 20.0]]])
    assert scraped(f"{name}_count", labels) == 1 + 8
    assert scraped(f"{name}_sum", labels) == 0.2 + 40.0
    assert scraped(f"{name}_bucket", {**labels, "le": "0.01"}) == 6
    assert scraped(f"{name}_bucket", {**labels, "le": "0.25"}) == 7
    assert scraped(f"{name}_bucket", {**labels, "le": "+Inf"}) == 9
    # Snapshots still read the metric itself: a horse forked now starts from the worker's own values.
    assert metrics.snapshot()[(name, ("/handover/b", "POST"))][-1] == 0.2


def test_a_horse_reports_only_what_it_changed_after_it_started():
    import json
    import os

    from modwatch.telemetry import job_metrics

    metrics.RULE_HITS.labels(rule="handover-worker").inc(5)  # the worker's own, inherited by the horse
    job_metrics.enqueued_counter("handover", "kept").inc()  # a kept series, inherited too
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the horse
        try:
            baseline = metrics.start_horse()
            metrics.RULE_HITS.labels(rule="handover-horse").inc()
            job_metrics.enqueued_counter("handover", "kept").inc(2)
            metrics.RATELIMIT_REMAINING.labels(family="global").set(7)
            os.write(write_end, json.dumps(metrics.changes_since(baseline)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        changes = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert sorted(changes) == sorted([
        ["modwatch_rule_hits", ["handover-horse"], [1.0]],
        ["modwatch_jobs_enqueued", ["handover", "kept"], [2.0]],
        ["modwatch_ratelimit_remaining", ["global"], [7.0]],
    ])
