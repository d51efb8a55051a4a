"""Moderators' verdicts on modwatch's reports, read back per rule (report.updated and the admin reports API)."""

from __future__ import annotations

import requests

from modwatch.jobs import tasks
from modwatch.moderation import outcomes
from modwatch.telemetry.metrics import RULE_VERDICTS


def verdicts(rule: str, verdict: str) -> float:
    return RULE_VERDICTS.labels(rule=rule, verdict=verdict)._value.get()


def test_resolved_reports_count_per_rule_once_whichever_way_they_arrive(world):
    right, wrong = world.add_spammer("rightly"), world.add_spammer("wrongly")
    assert tasks.analyze_and_maybe_report(right, "manual")["outcome"] == "filed"
    assert tasks.analyze_and_maybe_report(wrong, "manual")["outcome"] == "filed"
    reports = {r["target_account"]["id"]: r for r in world.filed()}
    before = verdicts("crypto-scam", "actioned"), verdicts("crypto-scam", "dismissed")

    assert tasks.sync_report_outcomes()["actioned"] == 0  # nothing resolved yet
    requests.put(f"{world.sim.base_url}/_sim/accounts/{right}/moderation", json={"moderation": "suspended"},
                 timeout=10).raise_for_status()
    resolved = {account: world.sim_post(f"reports/{reports[account]['id']}/resolve", {}) for account in (right, wrong)}
    assert outcomes.verdict_of(resolved[right]) == "actioned" and outcomes.verdict_of(resolved[wrong]) == "dismissed"

    # The webhook brings one verdict; the sync finds both but counts only the one not seen yet.
    assert tasks.process_report_update(resolved[right])["outcome"] == "verdict"
    synced = tasks.sync_report_outcomes()
    assert synced["outcome"] == "synced" and synced["actioned"] == 0 and synced["dismissed"] == 1
    assert tasks.sync_report_outcomes()["dismissed"] == 0  # each report counts once

    precision = outcomes.precision()["crypto-scam"]
    assert precision == {"actioned": 1, "dismissed": 1, "precision": 0.5}
    assert (verdicts("crypto-scam", "actioned"), verdicts("crypto-scam", "dismissed")) == (before[0] + 1, before[1] + 1)


def test_reports_modwatch_did_not_file_are_not_counted(world):
    foreign = {"id": "999", "action_taken": True, "target_account": {"id": "5", "suspended": True}}
    assert tasks.process_report_update(foreign)["outcome"] == "ignored"
    assert outcomes.precision() == {}
    assert outcomes.verdict_of({"id": "1", "action_taken": False}) is None


def test_polls_read_verdicts_once_per_interval(world):
    spammer = world.add_spammer("polled")
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "filed"
    [report] = world.filed(spammer)
    world.sim_post(f"reports/{report['id']}/resolve", {})
    first = tasks.poll_admin_accounts()
    assert first["verdicts"] == {"outcome": "synced", "actioned": 0, "dismissed": 1}
    assert "verdicts" not in tasks.poll_admin_accounts_local()  # not due again within REPORT_OUTCOMES_INTERVAL
