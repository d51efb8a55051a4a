"""Every real Mastodon payload in the shared folder goes through the flows that read it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml

from isolation import mastodon_recordings
from modwatch.jobs import tasks
from modwatch.jobs.enqueue import submit
from modwatch.moderation import analysis, flows, polling, runtime
from modwatch.redis_keys import ANALYSIS_DEFERRED_KEY
from modwatch.simulator.state import Account

MASTODON = mastodon_recordings()
WEBHOOKS = sorted((MASTODON / "webhooks").glob("*.body.json"))


def cassette_bodies(name: str) -> list:
    cassette = yaml.safe_load((MASTODON / "cassettes" / name).read_text())
    bodies = []
    for interaction in cassette["interactions"]:
        text = interaction["response"]["body"]["string"]
        if interaction["response"]["status"]["code"] == 200 and text.startswith(("{", "[")):
            bodies.append(json.loads(text))
    return bodies


def adopt(world, public_account: dict) -> None:
    """Give the simulator the recorded account under its real id, so the flows can fetch its statuses."""
    state = world.sim.state
    with state.lock:
        account_id = int(public_account["id"])
        username, _, domain = public_account["acct"].partition("@")
        state.accounts[account_id] = Account(account_id, username, domain or None, datetime.now(timezone.utc),
                                             note=public_account.get("note", ""))


def test_the_shared_payloads_are_there():
    assert len(WEBHOOKS) == 3 and (MASTODON / "cassettes" / "test_admin_accounts_v2.yaml").exists()


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.name)
def test_recorded_webhook_bodies_are_analysed(world, path):
    envelope = json.loads(path.read_text())
    obj = envelope["object"]
    embedded = {"status.created": lambda: obj["account"], "account.created": lambda: obj["account"],
                "report.created": lambda: obj["target_account"]["account"]}[envelope["event"]]()
    adopt(world, embedded)
    handler = {"status.created": tasks.process_new_status, "account.created": tasks.process_new_account,
               "report.created": tasks.process_new_report}[envelope["event"]]

    first = handler(obj)
    again = handler(obj)  # a redelivery
    assert first["outcome"] == again["outcome"] == "analysed"
    assert first["account_id"] == embedded["id"] and first["score"] < first["threshold"]
    assert world.filed() == []


def test_a_status_webhook_is_analysed_from_the_delivery_alone(world):
    # The recorded account is unknown to this simulator: nothing needs fetching to score its post.
    envelope = json.loads((MASTODON / "webhooks" / "status.created.body.json").read_text())
    result = tasks.process_new_status(envelope["object"])
    assert result["outcome"] == "analysed" and result["score"] < result["threshold"]
    assert [path for method, path, _ in world.requests.requests if method == "GET"] == []


def test_reports_modwatch_filed_itself_are_ignored(world):
    spammer = world.add_spammer()
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "filed"
    [own_report] = world.filed()  # Admin::Report, as the report.created webhook carries it
    assert tasks.process_new_report(own_report)["outcome"] == "ignored"
    assert len(world.filed()) == 1


def test_documented_report_webhook_with_a_remote_target(world):
    envelope = json.loads((MASTODON / "docs-examples" / "webhook-report.created.example.json").read_text())
    target = envelope["object"]["target_account"]
    adopt(world, analysis.public_account(target))
    result = tasks.process_new_report(envelope["object"])
    assert result["outcome"] == "analysed" and result["account_id"] == str(target["id"])


def test_malformed_webhook_objects_are_skipped_with_a_reason(world):
    assert "no numeric id" in flows.handle_status({"id": "1"})["reason"]
    assert "no numeric id" in flows.handle_account({"account": {"id": "x"}})["reason"]


def test_recorded_admin_accounts_pages_become_analysis_jobs(world):
    from modwatch.jobs.queues import get_queue

    items = [item for body in cassette_bodies("test_admin_accounts_v2.yaml")
             for item in (body if isinstance(body, list) else [body]) if "account" in item]
    assert items
    unique = {item["id"] for item in items}
    assert submit(polling.changed(items, "poll_local")) == len(unique)
    assert submit(polling.changed(items, "poll_local")) == 0  # still queued: not twice
    assert len(get_queue("moderation")) == len(unique)
    for item in items:
        scored = analysis.score(item, [], world.settings, runtime.current())
        assert scored.account is item["account"] and not scored.reportable


@pytest.mark.parametrize("name", ["test_status.yaml", "test_account.yaml", "test_accounts.yaml",
                                  "test_fetch_next_previous.yaml", "test_min_max_id.yaml", "test_account_pinned.yaml"])
def test_recorded_accounts_and_statuses_score(world, name):
    statuses, accounts = [], []
    for body in cassette_bodies(name):
        for entity in body if isinstance(body, list) else [body]:
            if isinstance(entity, dict) and "content" in entity:
                statuses.append(entity)
            elif isinstance(entity, dict) and "acct" in entity:
                accounts.append(entity)
    accounts += [status["account"] for status in statuses]
    assert accounts
    for account in accounts:
        scored = analysis.score(account, [s for s in statuses if s["account"]["id"] == account["id"]],
                                world.settings, runtime.current())
        assert scored.analysis.account_id == account["id"] and scored.analysis.score >= 0


def test_recorded_admin_reports_are_recognised(world):
    reports = [r for body in cassette_bodies("test_admin_reports.yaml") for r in (body if isinstance(body, list) else [body])
               if isinstance(r, dict) and "target_account" in r]
    assert reports
    for report in reports:
        adopt(world, analysis.public_account(report["target_account"]))
        assert tasks.process_new_report(report)["outcome"] == "analysed"


def test_a_poll_adds_no_analysis_for_an_account_waiting_for_a_rate_limit_slot(world):
    from modwatch.connection import get_redis

    items = [item for body in cassette_bodies("test_admin_accounts_v2.yaml")
             for item in (body if isinstance(body, list) else [body]) if "account" in item]
    waiting = str(items[0]["id"])
    get_redis().set(ANALYSIS_DEFERRED_KEY.format(account_id=waiting), "analyze-later", ex=60)
    others = {str(item["id"]) for item in items} - {waiting}
    assert {item.account_id for item in polling.changed(items, "poll_local")} == others
    assert flows.decide(items[0], [], "poll_local", None, world.settings)["outcome"] == "analysed"  # it ran
    assert not get_redis().exists(ANALYSIS_DEFERRED_KEY.format(account_id=waiting))
