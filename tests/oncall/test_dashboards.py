"""Static checks of the built Grafana dashboards (dashboards/*.json)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from oncall.support import DASHBOARDS, REPO, known_series_names, metric_names_in

CURRENT_PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "heatmap", "bargauge", "text", "alertlist",
                       "state-timeline", "row"}
PANELS_WITHOUT_FIELDS = {"text", "alertlist", "row"}
EXPECTED_UIDS = {"modwatch-overview", "modwatch-queues", "modwatch-moderation", "modwatch-api"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all", "__tags"}


def load(path) -> dict:
    return json.loads(path.read_text())


def panels_of(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def targets_of(dashboard: dict) -> list[dict]:
    return [target for panel in panels_of(dashboard) for target in panel.get("targets", [])]


def variables_of(dashboard: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


@pytest.fixture(params=DASHBOARDS, ids=lambda path: path.stem)
def dashboard(request) -> dict:
    return load(request.param)


def test_the_four_dashboards_exist_with_stable_unique_uids():
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert sorted(uids) == sorted(EXPECTED_UIDS)


def test_schema_version_is_current(dashboard):
    assert dashboard["schemaVersion"] >= 39


def test_only_current_panel_types(dashboard):
    for panel in panels_of(dashboard):
        assert panel["type"] in CURRENT_PANEL_TYPES, f"{panel['title']}: deprecated or unknown type {panel['type']}"


def test_every_data_panel_has_a_unit(dashboard):
    for panel in panels_of(dashboard):
        if panel["type"] not in PANELS_WITHOUT_FIELDS:
            assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{panel['title']} has no unit"


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard):
    panels = panels_of(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} is wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_datasource_job_and_instance_variables(dashboard):
    variables = variables_of(dashboard)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["definition"].startswith("label_values(")


def test_every_variable_used_is_defined(dashboard):
    defined = set(variables_of(dashboard)) | BUILTIN_VARIABLES
    text = json.dumps({key: value for key, value in dashboard.items() if key != "templating"})
    used = set(re.findall(r"\$\{?(\w+)", text))
    assert used <= defined, f"undefined variables {used - defined}"


def test_queue_filtered_dashboards_have_a_queue_variable(dashboard):
    if any('$queue' in target["expr"] for target in targets_of(dashboard)):
        queue = variables_of(dashboard)["queue"]
        assert queue["type"] == "query" and queue["definition"].startswith("label_values(")


def test_queries_use_the_datasource_variable(dashboard):
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert target["refId"]


def test_every_metric_in_a_query_is_catalogued(dashboard):
    known = known_series_names()
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            unknown = metric_names_in(target["expr"]) - known
            assert not unknown, f"{panel['title']}: {unknown} not in docs/metrics.md nor a recording rule"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"]).group(1)
            assert metric_names_in(selector) <= known, variable["name"]


def test_overview_covers_what_on_call_looks_at():
    overview = load(REPO / "dashboards" / "overview.json")
    exprs = " ".join(target["expr"] for target in targets_of(overview))
    for metric in ("modwatch_queue_oldest_job_age_seconds", "rq_jobs", "modwatch_jobs_finished_total",
                   "modwatch_workers", "modwatch_scheduler_heartbeat_timestamp_seconds",
                   "modwatch_queue_stats_last_success_timestamp_seconds", "modwatch_webhook_deliveries_total",
                   "modwatch_mastodon_requests_total"):
        assert metric in exprs, metric
    assert any(panel["type"] == "alertlist" for panel in panels_of(overview))


def test_queues_dashboard_links_jobs_to_traces():
    queues = load(REPO / "dashboards" / "queues.json")
    heatmaps = [panel for panel in panels_of(queues) if panel["type"] == "heatmap"]
    assert {"modwatch_job_wait_seconds_bucket", "modwatch_job_duration_seconds_bucket"} <= {
        name for panel in heatmaps for target in panel["targets"] for name in metric_names_in(target["expr"])}
    assert all(target.get("exemplar") for panel in heatmaps for target in panel["targets"])
    assert variables_of(queues)["job_id"]["type"] == "textbox"
    text = json.dumps(queues)
    assert "/jobs/jobs/${job_id}/trace" in text
    assert "span.messaging.message.id%20%3D%20%5C%22${job_id}%5C%22" in text  # TraceQL in the Explore link


def test_moderation_dashboard_shows_reports_and_top_domains():
    moderation = load(REPO / "dashboards" / "moderation.json")
    exprs = " ".join(target["expr"] for target in targets_of(moderation))
    for metric in ("modwatch_accounts_scanned_total", "modwatch_rule_hits_total", "modwatch_reports_total",
                   "modwatch_top_domain_violations"):
        assert metric in exprs, metric


def test_build_check_notices_a_stale_dashboard(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("dashboards_build", REPO / "dashboards" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    (tmp_path / "src").mkdir()
    shared = REPO / "dashboards" / "src" / "_shared.yaml"
    (tmp_path / "src" / "_shared.yaml").write_text(shared.read_text())
    source = (REPO / "dashboards" / "src" / "moderation.yaml").read_text()
    (tmp_path / "src" / "moderation.yaml").write_text(source)
    monkeypatch.setattr(build, "HERE", tmp_path)
    monkeypatch.setattr(build, "SOURCES", tmp_path / "src")
    monkeypatch.setattr(build, "SHARED", tmp_path / "src" / "_shared.yaml")
    assert build.main(["--check"]) == 1  # not built yet
    assert build.main([]) == 0
    assert build.main(["--check"]) == 0
    (tmp_path / "src" / "moderation.yaml").write_text(source.replace("title: Rule hits\n", "title: Rule matches\n"))
    assert build.main(["--check"]) == 1
