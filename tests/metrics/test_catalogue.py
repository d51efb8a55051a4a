"""docs/metrics.md is a contract: every registered metric is in it, with its type and labels, and nothing else."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import modwatch
from modwatch.telemetry import queue_stats

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# prometheus_client's own process and runtime collectors.
RUNTIME_PREFIXES = ("process_", "python_")
# Alembic's env.py runs migrations when imported.
NOT_IMPORTED = ("modwatch.storage.migrations",)


def documented() -> dict[str, tuple[str, tuple[str, ...], set[str]]]:
    text = CATALOGUE.read_text()
    table = text[text.index("<!-- catalogue:start -->"):text.index("<!-- catalogue:end -->")]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        name, kind, labels, processes, meaning = cells
        assert meaning, f"{name} has no meaning"
        assert name not in rows, f"{name} is listed twice"
        rows[name.strip("`")] = (kind, tuple(re.findall(r"`([a-z_]+)`", labels)), {p.strip() for p in processes.split(",")})
    return rows


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    for module in pkgutil.walk_packages(modwatch.__path__, "modwatch."):
        if not module.name.startswith(NOT_IMPORTED):
            importlib.import_module(module.name)
    from modwatch.jobs.queues import PRIORITY

    queue_stats.register_collector(PRIORITY)
    metrics = {}
    for collector in set(REGISTRY._names_to_collectors.values()):
        if isinstance(collector, MetricWrapperBase):
            family = collector.describe()[0]
            name = family.name + ("_total" if family.type == "counter" else "")
            metrics[name] = (family.type, tuple(collector._labelnames))
        elif isinstance(collector, queue_stats.QueueStatsCollector):
            metrics.update({name: ("gauge", labels) for name, (_, labels) in queue_stats.GAUGES.items()})
        else:
            names = [family.name for family in getattr(collector, "describe", collector.collect)()]
            assert all(name.startswith(RUNTIME_PREFIXES) for name in names), f"unknown collector serving {names}"
    return metrics


def test_code_and_catalogue_agree():
    docs = documented()
    code = registered()
    assert sorted(set(code) - set(docs)) == [], "registered but not in docs/metrics.md"
    assert sorted(set(docs) - set(code)) == [], "in docs/metrics.md but not registered"
    for name, (kind, labels) in code.items():
        assert docs[name][:2] == (kind, labels), name


def test_catalogue_names_processes_only_that_exist():
    for name, (_, _, processes) in documented().items():
        assert processes <= {"api", "worker", "scheduler", "stream"}, name
