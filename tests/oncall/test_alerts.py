"""The alert rules: promtool accepts and tests them, and every alert carries what on-call needs."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest
import yaml

from oncall.support import ALERT_TESTS, REPO, RULES_FILE, known_series_names, metric_names_in

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
SEVERITIES = {"page", "ticket", "info"}
CASES = ("firing", "quiet", "missing")
DASHBOARD_UIDS = {"modwatch-overview", "modwatch-queues", "modwatch-moderation", "modwatch-api"}


def load_build():
    spec = importlib.util.spec_from_file_location("alerts_build", REPO / "alerts" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_promtool
def test_promtool_check_rules_passes():
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    result = subprocess.run([PROMTOOL, "test", "rules", *map(str, ALERT_TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_file_is_built_from_config():
    result = subprocess.run([sys.executable, str(REPO / "alerts" / "build.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_build_rejects_unknown_placeholder(tmp_path, monkeypatch):
    build = load_build()
    (tmp_path / "broken.yaml").write_text("groups:\n  - name: x\n    rules:\n      - record: a\n        expr: ${no_such_value}\n")
    monkeypatch.setattr(build, "SOURCES", tmp_path)
    with pytest.raises(KeyError, match="no_such_value"):
        build.render()


def test_overrides_reach_the_rules():
    """The end-to-end test shortens `for:` through overrides; make sure they land."""
    rules = yaml.safe_load(load_build().render({"queue_stalled_for": "7s"}))
    stalled = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ModwatchQueueStalled"]
    assert [rule["for"] for rule in stalled] == ["7s"]


def test_recording_rules_have_their_own_group(rule_groups):
    for group in rule_groups:
        kinds = {"record" if "record" in rule else "alert" for rule in group["rules"]}
        assert len(kinds) == 1, f"group {group['name']} mixes recording and alerting rules"
    assert any("record" in rule for group in rule_groups for rule in group["rules"])


def test_every_alert_has_severity_and_annotations(alert_rules):
    for rule in alert_rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        for key in ("summary", "description", "runbook_url", "dashboard_url"):
            assert rule["annotations"].get(key, "").strip(), f"{name} lacks annotations.{key}"
        assert "${" not in yaml.safe_dump(rule), f"{name} has an unrendered placeholder"


def test_every_alert_has_a_runbook(alert_rules):
    base = yaml.safe_load((REPO / "alerts" / "config.yaml").read_text())["runbook_base_url"].rstrip("/")
    for rule in alert_rules:
        name = rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"{base}/{name}.md"
        runbook = REPO / "docs" / "runbooks" / f"{name}.md"
        assert runbook.is_file(), f"missing {runbook.relative_to(REPO)}"
        text = runbook.read_text()
        assert text.startswith(f"# {name}\n"), runbook
        for section in ("## What it means", "## Confirm", "## Fix"):
            assert section in text, f"{runbook.name} lacks {section!r}"
        assert "```promql" in text, f"{runbook.name} shows no PromQL to confirm with"


def test_oncall_index_lists_every_alert(alert_rules):
    index = (REPO / "docs" / "oncall.md").read_text()
    for name in {rule["alert"] for rule in alert_rules}:
        assert f"(runbooks/{name}.md)" in index, name


def test_dashboard_links_point_at_dashboards_and_carry_the_queue(alert_rules):
    for rule in alert_rules:
        url = rule["annotations"]["dashboard_url"]
        uid = re.search(r"/d/([\w-]+)", url).group(1)
        assert uid in DASHBOARD_UIDS, f"{rule['alert']} links to unknown dashboard {uid}"
        if re.search(r"by \(queue\)|\{queue=", rule["expr"]):
            assert "var-queue={{ $labels.queue }}" in url, f"{rule['alert']} drops the queue in its dashboard link"


def test_alert_expressions_use_catalogued_metrics(rule_groups):
    known = known_series_names()
    for group in rule_groups:
        for rule in group["rules"]:
            unknown = metric_names_in(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule.get('record')} uses {unknown} missing from docs/metrics.md"


def _promtool_cases() -> dict[str, set[str]]:
    """alert name -> cases ("firing", "quiet", "missing") covered by a named promtool test group."""
    covered = defaultdict(set)
    for path in ALERT_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            name = group.get("name", "")
            alert, _, rest = name.partition(":")
            case = (rest.split() or [None])[0]
            tests = [t for t in group.get("alert_rule_test", []) if t["alertname"] == alert]
            if case not in CASES or not tests:
                continue
            if case == "firing" and not any(t.get("exp_alerts") for t in tests):
                continue  # a firing case must expect the alert
            if case == "quiet" and any(t.get("exp_alerts") for t in tests):
                continue  # a quiet case must expect silence
            covered[alert].add(case)
    return covered


def test_every_alert_has_firing_quiet_and_missing_tests(alert_rules):
    covered = _promtool_cases()
    for name in sorted({rule["alert"] for rule in alert_rules}):
        missing = set(CASES) - covered[name]
        assert not missing, f"{name}: no promtool test group for {sorted(missing)} (name it '{name}: <case> ...')"


def test_every_severity_of_an_alert_is_tested_firing(alert_rules):
    fired = defaultdict(set)
    for path in ALERT_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for test in group.get("alert_rule_test", []):
                for alert in test.get("exp_alerts") or []:
                    fired[test["alertname"]].add(alert["exp_labels"]["severity"])
    for rule in alert_rules:
        assert rule["labels"]["severity"] in fired[rule["alert"]], f"{rule['alert']} never fires as {rule['labels']['severity']}"


def test_every_alert_names_its_component(alert_rules):
    components = {"api", "worker", "scheduler", "redis", "stats", "mastodon", "stream"}
    for rule in alert_rules:
        assert rule["labels"].get("component") in components, rule["alert"]


def _seconds(value) -> float:
    return load_build()._seconds(value) if isinstance(value, str) else float(value)


def test_inhibiting_alerts_fire_before_what_they_mute():
    """Alertmanager inhibits only while the source fires: a target that fired first would page too."""
    config = yaml.safe_load((REPO / "alerts" / "config.yaml").read_text())

    def time_to_fire(threshold: str | None, for_key: str) -> float:
        return (_seconds(config[threshold]) if threshold else 0.0) + _seconds(config[for_key])

    scheduler_down = time_to_fire("scheduler_heartbeat_stale_seconds", "scheduler_down_for")
    no_workers = time_to_fire(None, "no_workers_for")
    redis_down = time_to_fire(None, "redis_down_for")
    stats_stale = time_to_fire("queue_stats_stale_seconds", "queue_stats_stale_for")
    target_down = time_to_fire(None, "target_down_for")
    # Stale statistics start counting one interval (15 s) before the cause at worst.
    assert scheduler_down + 15 < stats_stale and no_workers + 15 < stats_stale
    assert scheduler_down < target_down and no_workers < target_down
    assert redis_down < min(scheduler_down, stats_stale, target_down, time_to_fire(None, "queue_stats_absent_for"))
    assert no_workers < time_to_fire("queue_stalled_oldest_age_seconds", "queue_stalled_for")


def test_alertmanager_config_routes_and_inhibits_by_component():
    config = yaml.safe_load((REPO / "observability" / "alertmanager" / "alertmanager.yml").read_text())
    assert "component" in config["route"]["group_by"]
    alerts = {rule["alert"] for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            names = re.fullmatch(r'alertname(=~|=)"([^"]+)"', matcher)
            if names and names.group(1) == "=":
                assert names.group(2) in alerts, matcher
            elif names:
                assert any(re.fullmatch(names.group(2), alert) for alert in alerts), matcher


def test_slo_threshold_is_a_histogram_bucket():
    from modwatch.telemetry.metrics import WAIT_BUCKETS

    config = yaml.safe_load((REPO / "alerts" / "config.yaml").read_text())
    assert float(config["slo_wait_seconds"]) in map(float, WAIT_BUCKETS)
