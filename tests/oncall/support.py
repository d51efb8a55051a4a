"""Helpers for the on-call kit tests: repo paths, the rendered rule file, the metrics catalogue, PromQL names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "alerts" / "modwatch.rules.yaml"
ALERT_TESTS = sorted((REPO / "alerts" / "tests").glob("*.yaml"))
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))

# Function-like words and keywords that can stand where a metric name would in PromQL.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}


def catalogue_metrics() -> set[str]:
    """Metric names in docs/metrics.md's catalogue table (first column, in backticks)."""
    text = (REPO / "docs" / "metrics.md").read_text()
    table = text.split("<!-- catalogue:start -->")[1].split("<!-- catalogue:end -->")[0]
    return set(re.findall(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`", table, flags=re.M))


def histogram_metrics() -> set[str]:
    text = (REPO / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*histogram", text, flags=re.M))


def recording_rule_names() -> set[str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def known_series_names() -> set[str]:
    """What a PromQL expression of ours may select: catalogue, histogram parts, recording rules, `up`."""
    histogram_parts = {f"{name}{suffix}" for name in histogram_metrics() for suffix in ("_bucket", "_sum", "_count")}
    return catalogue_metrics() | histogram_parts | recording_rule_names() | {"up"}


def metric_names_in(expr: str) -> set[str]:
    """Series names selected by a PromQL expression (label matchers, ranges, grouping and functions removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        name, is_call = match.group(1), match.group(2)
        if not is_call and name.lower() not in PROMQL_KEYWORDS:
            names.add(name)
    return names


def process_env(workdir: Path, metrics_port: int | None, **settings: str) -> dict[str, str]:
    """The environment of a modwatch process a stack test starts: this one's, with no tracing exporter and no
    Mastodon, a database in `workdir`, JSON logs, and `settings` (REDIS_URL, API_KEY, intervals...)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("OTEL_") and key not in {"INSTANCE_BASE", "MASTODON_ACCESS_TOKEN"}}
    env.update({"DATABASE_URL": f"sqlite:///{workdir / 'modwatch.db'}", "LOG_FORMAT": "json",
                "OTEL_SDK_DISABLED": "true", **settings})
    if metrics_port is not None:
        env["METRICS_PORT"] = str(metrics_port)
    return env
