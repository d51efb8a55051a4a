"""Polling, analysis and exactly-once reports against the simulator over HTTP."""

from __future__ import annotations

from sqlalchemy import select

from isolation import wait_for
from modwatch.jobs import tasks
from modwatch.moderation import analysis, polling, reports, runtime
from modwatch.moderation.reports import marker
from modwatch.redis_keys import DOMAIN_VIOLATIONS_KEY
from modwatch.settings import get_settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import AuditEntry, DomainViolation, PollCursor, Report
from tests.moderation.conftest import run_jobs


def report_rows(**where) -> list[Report]:
    with session_scope() as session:
        query = select(Report).filter_by(**where).order_by(Report.id)
        return list(session.scalars(query))


def decisions(account_id: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.decision).where(AuditEntry.account_id == account_id).order_by(AuditEntry.id)
        return list(session.scalars(query))


def test_spam_found_by_polling_is_reported_once_and_clean_never(world):
    spammer = world.add_spammer("deals", domain="spam.example")
    clean = world.add_clean("walker", domain="spam.example")
    local_clean = world.add_clean("neighbour", domain=None)

    for _ in range(3):
        tasks.poll_admin_accounts()
        tasks.poll_admin_accounts_local()
        run_jobs()
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "duplicate"

    filed = world.filed()
    assert [r["target_account"]["id"] for r in filed] == [spammer]
    report = filed[0]
    [row] = report_rows(state="filed")
    assert row.mastodon_report_id == str(report["id"])
    assert marker(row.dedupe_key) in report["comment"] and "crypto-scam" in report["comment"]
    assert report["category"] == "spam" and report["forwarded"] is True
    assert sorted(s["id"] for s in report["statuses"]) == sorted(row.status_ids) and row.status_ids
    assert "analysed" in decisions(clean) and "reported" not in decisions(clean)
    assert "analysed" in decisions(local_clean)
    assert decisions(spammer).count("reported") == 1 and "duplicate" in decisions(spammer)
    with session_scope() as session:
        assert session.get(DomainViolation, "spam.example").violations == 1
    assert world.redis.zscore(DOMAIN_VIOLATIONS_KEY, "spam.example") == 1


def test_repeated_polls_enqueue_nothing_new_until_an_account_posts(world):
    walker = world.add_clean("walker", domain=None)
    first = tasks.poll_admin_accounts_local()
    assert first["enqueued"] >= 1
    run_jobs()
    assert tasks.poll_admin_accounts_local()["enqueued"] == 0

    world.sim_post("statuses", {"account_id": walker, "text": "A crypto giveaway, whatsapp me: bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"})
    again = tasks.poll_admin_accounts_local()
    assert again["enqueued"] == 1
    run_jobs()
    assert [r["target_account"]["id"] for r in world.filed()] == [walker]


def test_cursor_walks_back_then_picks_up_newer_accounts(world, monkeypatch):
    monkeypatch.setattr(polling, "PAGE_LIMIT", 3)
    monkeypatch.setenv("POLL_MAX_PAGES", "2")
    get_settings.cache_clear()
    ids = [world.add_clean(f"person{i}", domain="far.example") for i in range(7)]

    first = tasks.poll_admin_accounts()
    assert first["pages"] == 2 and first["accounts"] == 6
    with session_scope() as session:
        cursor = session.get(PollCursor, "remote")
        assert cursor.newest_id == ids[-1]
        assert cursor.sweep_max_id == ids[1]  # the oldest account of the second page

    second = tasks.poll_admin_accounts()
    with session_scope() as session:
        cursor = session.get(PollCursor, "remote")
        assert cursor.sweep_max_id is None and cursor.sweeps_completed == 1

    newer = [world.add_clean(f"newcomer{i}", domain="far.example") for i in range(4)]
    third = tasks.poll_admin_accounts()
    with session_scope() as session:
        assert session.get(PollCursor, "remote").newest_id == newer[-1]
    assert second["accounts"] >= 1 and third["accounts"] >= 4

    asked = world.requests.params("GET", "/api/v2/admin/accounts")
    cursors = [{k: v[0] for k, v in query.items() if k in ("max_id", "min_id", "since_id")} for query in asked]
    assert cursors == [
        {},  # first run: from the newest account back...
        {"max_id": ids[4]},  # ...page by page
        {"min_id": ids[-1]},  # second run: anything newer? no...
        {"max_id": ids[1]},  # ...so the sweep goes on where it stopped and ends
        {"min_id": ids[-1]},  # third run: the block just above the newest id seen...
        {"min_id": newer[2]},  # ...and the next one up
    ]
    assert all(query["origin"] == ["remote"] and query["status"] == ["active"] for query in asked)

    run_jobs()
    assert world.filed() == []


def test_rate_limited_analysis_is_rescheduled_after_the_reset_and_then_reported(world):
    from rq.scheduler import RQScheduler

    from modwatch.jobs.enqueue import enqueue
    from modwatch.jobs.queues import get_queue

    spammer = world.add_spammer()
    world.faults(ratelimit_ratio=1)
    result = tasks.analyze_and_maybe_report(spammer, "manual")
    assert result["outcome"] == "rate_limited"
    queue = get_queue("moderation")
    scheduled_at = queue.scheduled_job_registry.get_scheduled_time(result["retry_job_id"])
    from datetime import datetime

    reset = datetime.fromisoformat(result["reset_at"])
    assert 0 <= (scheduled_at - reset).total_seconds() <= 2
    assert world.filed() == []

    world.faults(ratelimit_ratio=0)
    queued_before = enqueue(tasks.analyze_and_maybe_report, world.add_clean(), "poll_local").id
    scheduler = RQScheduler([queue], world.redis)
    scheduler.prepare_registries([queue.name])
    # RQ's scheduler, once due.
    wait_for(lambda: scheduler.enqueue_scheduled_jobs() or queue.count > 1, "the retry to be moved back", timeout=10)
    assert queue.job_ids == [result["retry_job_id"], queued_before]  # its slot is its turn: ahead of the backlog
    run_jobs("moderation")
    assert [r["target_account"]["id"] for r in world.filed()] == [spammer]


def test_dry_run_files_nothing_and_does_not_block_the_real_report(world):
    spammer = world.add_spammer()
    runtime.update({"dry_run": True})
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "dry_run"
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "duplicate"
    assert world.filed() == []
    [dry] = report_rows(dry_run=True)
    assert dry.state == "dry_run" and marker(dry.dedupe_key) in dry.comment

    runtime.update({"dry_run": False})
    assert tasks.analyze_and_maybe_report(spammer, "manual")["outcome"] == "filed"
    assert len(world.filed(spammer)) == 1
    [live] = report_rows(dry_run=False)
    assert live.dedupe_key == dry.dedupe_key and live.state == "filed"
    assert "skipped_dry_run" in decisions(spammer) and "reported" in decisions(spammer)
    with session_scope() as session:  # one violation per evidence, whatever the mode
        assert session.get(DomainViolation, "spam.example").violations == 1


def test_panic_stop_sends_nothing_and_files_the_decision_once_lifted(world):
    spammer = world.add_spammer()
    runtime.update({"panic_stop": True})
    assert tasks.poll_admin_accounts()["outcome"] == "skipped"
    result = tasks.analyze_and_maybe_report(spammer, "manual")
    assert result["outcome"] == "waiting" and result["decision"] == "panic_stop"
    assert tasks.file_pending_reports()["outcome"] == "skipped"
    assert world.requests.params("GET", "/api/v2/admin/accounts") == []
    assert world.requests.params("POST", "/api/v1/reports") == []
    assert world.filed() == [] and [row.state for row in report_rows()] == ["pending"]  # the decision is kept
    assert "panic_stop" in decisions(spammer)

    runtime.update({"panic_stop": False})
    assert tasks.file_pending_reports()["reports"] == {"filed": 1}
    assert len(world.filed(spammer)) == 1


def test_runtime_threshold_override_wins_over_the_rules_file(world):
    # scam-contact 3, and a new account (3) with a bare profile (2): 8 of 10
    clean_enough = world.add_account("mild", ["whatsapp me"], domain=None)
    assert tasks.analyze_and_maybe_report(clean_enough, "manual")["outcome"] == "analysed"
    runtime.update({"report_threshold": 5})
    assert tasks.analyze_and_maybe_report(clean_enough, "manual")["outcome"] == "filed"
    runtime.update({"report_threshold": None})
    assert runtime.current().report_threshold is None


def test_after_a_5xx_on_create_the_report_is_looked_for_before_it_is_filed_again(world, monkeypatch):
    monkeypatch.setattr(reports, "LOOKUP_DELAYS_SECONDS", (0, 0, 0))
    spammer = world.add_spammer()
    client = analysis.MastodonClient.from_settings(world.settings)
    account, statuses = analysis.fetch_account_and_statuses(client, spammer)
    scored = analysis.score(account, statuses, world.settings, runtime.current())
    reports.sync_report_budget(client)  # the day's report budget read first: the fault below hits the POST

    world.faults(error_ratio=1)
    assert reports.record_and_file(scored, "manual", world.settings, client)["outcome"] == "waiting"
    [row] = report_rows()
    assert row.state == "pending" and row.attempts == 1 and row.claimed_until is None and row.doubt_since

    world.faults(error_ratio=0)
    outcomes = [reports.file_row(row.id, "manual", client, world.settings)["outcome"] for _ in range(3)]
    assert outcomes == ["waiting", "waiting", "filed"]  # two looks find nothing, the third look, then filed
    lookups = [q for q in world.requests.params("GET", "/api/v1/admin/reports") if "target_account_id" in q]
    assert [(q.get("resolved"), q["target_account_id"]) for q in lookups] == \
        [(None, [str(spammer)]), (["1"], [str(spammer)])] * reports.LOOKUPS_BEFORE_REFILE
    assert reports.record_and_file(scored, "manual", world.settings, client)["outcome"] == "duplicate"
    assert len(world.filed(spammer)) == 1


def test_a_slow_create_the_client_gave_up_on_is_found_not_filed_twice(world, monkeypatch):
    """Issue 5a: Mastodon takes longer than the client's timeout; the report lands after the first look."""
    monkeypatch.setattr(reports, "LOOKUP_DELAYS_SECONDS", (0, 0, 0))
    spammer = world.add_spammer()
    client = analysis.MastodonClient(world.sim.base_url, world.env["MASTODON_ACCESS_TOKEN"], timeout=0.5)
    scored = analysis.score(*analysis.fetch_account_and_statuses(client, spammer), world.settings, runtime.current())
    reports.sync_report_budget(client)
    world.faults(latency_ms=2500)
    assert reports.record_and_file(scored, "manual", world.settings, client)["outcome"] == "waiting"
    world.faults(latency_ms=0)
    [row] = report_rows()
    first_look = reports.file_row(row.id, "manual", client, world.settings)
    assert first_look["outcome"] == "waiting" and world.filed(spammer) == []  # still being created
    wait_for(lambda: world.filed(spammer), "the slow report to land")
    assert reports.file_row(row.id, "manual", client, world.settings)["outcome"] == "filed"
    [filed] = world.filed(spammer)
    [row] = report_rows()
    assert row.state == "filed" and row.mastodon_report_id == str(filed["id"])
    assert len(world.requests.params("POST", "/api/v1/reports")) == 1


def test_a_claimed_report_is_not_filed_by_a_second_worker(world):
    spammer = world.add_spammer()
    client = analysis.MastodonClient.from_settings(world.settings)
    scored = analysis.score(*analysis.fetch_account_and_statuses(client, spammer), world.settings, runtime.current())
    row_id, created = reports._insert(scored, world.settings, dry_run=False)
    assert created and reports._claim(row_id) == 1  # a first worker is filing it

    outcome = reports.file_row(row_id, "manual", client, world.settings)
    assert outcome["outcome"] == "duplicate" and "another worker" in outcome["reason"]
    assert reports.record_and_file(scored, "manual", world.settings, client)["outcome"] == "duplicate"
    assert world.filed() == []


def test_gone_account_is_recorded_and_given_up(world):
    result = tasks.analyze_and_maybe_report("123456789", "manual")
    assert result["outcome"] == "gone"
    assert decisions("123456789") == ["gone"]


def test_a_token_without_admin_scope_gives_up_and_records_the_missing_scope(world, monkeypatch):
    from modwatch.moderation import flows
    from modwatch.simulator.state import DEFAULT_USER_TOKEN

    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", DEFAULT_USER_TOKEN)  # a valid token, not an admin's
    get_settings.cache_clear()
    result = flows.poll_accounts("remote", submit=lambda follow_ups: 0)
    assert result["outcome"] == "forbidden" and "admin:read:accounts" in result["reason"]
    with session_scope() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.decision == "forbidden")).one()
        assert "admin:read:accounts" in entry.reason
