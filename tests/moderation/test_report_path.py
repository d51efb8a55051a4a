"""The report path against the simulator: every category, posts and rules that vanished, one open report
per account, nothing decided lost, a report-limit 429 that pauses filing only (issue 16, items 1-7)."""

from __future__ import annotations

import http.server
import threading
import time
import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from modwatch.api.app import create_app
from modwatch.jobs import tasks
from modwatch.mastodon.client import MastodonClient
from modwatch.mastodon.errors import MastodonError
from modwatch.moderation import polling, ratelimit, reports, runtime
from modwatch.moderation.analysis import Scored
from modwatch.moderation.engine import Analysis, Hit
from modwatch.settings import get_settings
from modwatch.simulator.ratelimit import FixedWindow
from modwatch.simulator.server import running
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN
from modwatch.storage.db import session_scope
from modwatch.storage.models import AccountAnalysis, Report
from modwatch.telemetry.metrics import MASTODON_REQUESTS
from tests.moderation.conftest import API_KEY


def decision(account_id: str, status_ids: list[str], category: str = "spam", rule: str = "spam-words",
             rule_ids: tuple[str, ...] = (), acct: str = "x@spam.example") -> Scored:
    """What an analysis decided: `rule` hit on each post (the evidence key follows the posts)."""
    hits = [Hit(rule, 10, category, "content", "buy now", status_id) for status_id in status_ids] or \
        [Hit(rule, 10, category, "note", "buy now", None)]
    analysis = Analysis(account_id, hits, {rule: (10, category, 0)}, rule_ids)
    return Scored({"id": account_id, "acct": acct}, analysis, 5, "test")


def posts(world, account_id: str) -> list[str]:
    return [s["id"] for s in requests.get(f"{world.sim.base_url}/api/v1/accounts/{account_id}/statuses",
                                          headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}, timeout=10).json()]


def rows(account_id: str | None = None) -> list[Report]:
    with session_scope() as session:
        query = select(Report).order_by(Report.id)
        if account_id:
            query = query.where(Report.account_id == account_id)
        return list(session.scalars(query))


def client(world) -> MastodonClient:
    return MastodonClient.from_settings(world.settings)


def test_every_category_is_filed_including_legal(world):
    """Item 2: Mastodon 4.2+ accepts `legal` (app/models/report.rb); Mastodon.py 2.3 refuses it before sending."""
    filed = {}
    for category, rule_ids in (("legal", ()), ("spam", ()), ("other", ()), ("violation", ("1", "3"))):
        account = world.add_spammer(f"c_{category}")
        result = reports.record_and_file(decision(account, posts(world, account)[:1], category, rule_ids=rule_ids),
                                         "manual", world.settings, client(world))
        assert result["outcome"] == "filed", result
        [report] = world.filed(account)
        filed[category] = (report["category"], [r["id"] for r in report["rules"]])
    assert filed == {"legal": ("legal", []), "spam": ("spam", []), "other": ("other", []),
                     "violation": ("violation", ["1", "3"])}


def test_a_deleted_post_is_dropped_and_the_report_filed_without_it(world):
    """Item 3: a 404 because an attached post vanished is not a gone account (report_service.rb)."""
    account = world.add_spammer("deleter")
    kept, deleted = posts(world, account)
    requests.delete(f"{world.sim.base_url}/_sim/statuses/{deleted}", timeout=10).raise_for_status()
    result = reports.record_and_file(decision(account, [kept, deleted]), "manual", world.settings, client(world))
    assert result["outcome"] == "filed", result
    [report] = world.filed(account)
    assert [s["id"] for s in report["statuses"]] == [kept]
    [row] = rows(account)
    assert row.state == "filed" and row.status_ids == [kept] and deleted in row.reason


def test_a_suspended_or_deleted_account_is_gone(world):
    """Item 3: the 404 for the account itself ends the report (report_service.rb: suspended -> RecordNotFound)."""
    account = world.add_spammer("suspended")
    status_ids = posts(world, account)
    requests.put(f"{world.sim.base_url}/_sim/accounts/{account}/moderation", json={"moderation": "suspended"},
                 timeout=10).raise_for_status()
    result = reports.record_and_file(decision(account, status_ids), "manual", world.settings, client(world))
    assert (result["outcome"], result["decision"]) == ("failed", "gone")
    assert rows(account)[0].reason.startswith("gone:") and world.filed(account) == []


def test_stale_rule_ids_are_dropped_and_the_report_filed(world):
    """Item 4 at filing: Mastodon answers 422 for rule ids it does not know (report.rb validate_rule_ids)."""
    requests.put(f"{world.sim.base_url}/_sim/rules", json={"rules": [{"id": 1, "text": "No spam."}]},
                 timeout=10).raise_for_status()
    account = world.add_spammer("stale")
    result = reports.record_and_file(decision(account, posts(world, account)[:1], "violation", rule_ids=("1", "7")),
                                     "manual", world.settings, client(world))
    assert result["outcome"] == "filed", result
    [report] = world.filed(account)
    assert (report["category"], [r["id"] for r in report["rules"]]) == ("violation", ["1"])
    assert "7" in rows(account)[0].reason


def test_one_open_report_per_account_new_evidence_is_held_until_it_is_resolved(world, monkeypatch):
    """Item 5b: six spam posts, six decisions: one report; the next one only after a moderator resolved it."""
    monkeypatch.setattr(reports, "RESOLUTION_CHECK_SECONDS", 0)
    account = world.add_account("waves", [f"crypto giveaway number {i}" for i in range(6)], domain="spam.example")
    status_ids = sorted(posts(world, account), key=int)
    outcomes = [reports.record_and_file(decision(account, status_ids[: i + 1]), "webhook", world.settings,
                                        client(world))["outcome"] for i in range(6)]
    assert outcomes == ["filed"] + ["held"] * 5
    assert len(world.filed(account)) == 1

    api = TestClient(create_app(), headers={"X-API-Key": API_KEY})
    with session_scope() as session:  # the view lists analysed accounts; these decisions were made by hand
        session.add(AccountAnalysis(account_id=account, source="webhook", score=10, threshold=5, rule_names=[],
                                    evidence=[], evidence_key="k", rules_hash="h"))
    view = api.get(f"/moderation/accounts/{account}").json()
    assert view["open_report"]["state"] == "filed" and len(view["held_evidence"]) == 5
    assert {r["held_by"] for r in view["held_evidence"]} == {view["open_report"]["id"]}

    # Nothing new is filed while the report is open; the check costs one request, not a report.
    assert reports.file_due(client(world), world.settings) == []
    [report] = world.filed(account)
    requests.post(f"{world.sim.base_url}/_sim/reports/{report['id']}/resolve", timeout=10).raise_for_status()
    results = reports.file_due(client(world), world.settings)
    assert [r["outcome"] for r in results] == ["resolved", "filed"]
    first, second = world.filed(account)
    assert first["id"] == report["id"] and second["comment"].endswith(reports.marker(decision(account, status_ids).analysis.evidence_key()))
    assert [r.state for r in rows(account)] == ["resolved"] + ["superseded"] * 4 + ["filed"]


def test_a_500_after_create_and_a_new_post_make_one_report(world, monkeypatch):
    """Item 5b: the create answered 500 after Mastodon made the report; a new post's decision meanwhile."""
    monkeypatch.setattr(reports, "LOOKUP_DELAYS_SECONDS", (0, 0, 0))
    account = world.add_spammer("late500")
    first, second = sorted(posts(world, account), key=int)
    world.faults(late_error_ratio=1)
    assert reports.record_and_file(decision(account, [first]), "webhook", world.settings, client(world))["outcome"] \
        == "waiting"
    world.faults(late_error_ratio=0)
    assert reports.record_and_file(decision(account, [first, second]), "webhook", world.settings,
                                   client(world))["outcome"] == "held"
    assert [r["outcome"] for r in reports.file_due(client(world), world.settings)] == ["filed"]  # adopted
    [report] = world.filed(account)
    assert rows(account)[0].mastodon_report_id == str(report["id"])
    assert len(world.requests.params("POST", "/api/v1/reports")) == 1


def test_dry_run_decisions_are_kept_and_filed_by_an_operator_one_or_all(world):
    """Item 6: dry-run decisions stay listed; POST /moderation/reports/{id}/file and /dry-run/file file them."""
    runtime.update({"dry_run": True})
    accounts = [world.add_spammer(f"dry{i}") for i in range(3)]
    for account in accounts:
        assert tasks.analyze_and_maybe_report(account, "manual")["outcome"] == "dry_run"
    world.requests.requests.clear()
    assert reports.file_due(client(world), world.settings) == []
    assert world.requests.requests == []  # waiting rows cost no request

    api = TestClient(create_app(), headers={"X-API-Key": API_KEY})
    listed = api.get("/moderation/reports", params={"state": "dry_run"}).json()
    assert listed["total"] == 3
    one = listed["reports"][-1]
    answer = api.post(f"/moderation/reports/{one['id']}/file")
    assert answer.status_code == 200 and answer.json()["reports"] == [{"id": one["id"], "state": "pending",
                                                                       "report_row": one["id"]}]
    assert api.post(f"/moderation/reports/{one['id']}/file").status_code == 409
    assert api.post("/moderation/reports/999999/file").status_code == 404
    assert tasks.file_pending_reports()["reports"] == {"filed": 1}  # DRY_RUN is still on
    assert len(world.filed()) == 1
    assert api.post("/moderation/reports/dry-run/file").json()["approved"] == 2
    assert tasks.file_pending_reports()["reports"] == {"filed": 2}
    assert sorted(r["target_account"]["id"] for r in world.filed()) == sorted(accounts)


def test_decisions_pending_when_dry_run_is_switched_on_cost_no_request(world):
    """Item 6: pending rows are not searched on every poll while DRY_RUN is on."""
    account = world.add_spammer("before")
    with session_scope() as session:
        session.add(Report(dedupe_key="k1", dry_run=False, state="pending", account_id=account, category="spam",
                           comment="modwatch:k1", status_ids=[], score=10, attempts=1))
    runtime.update({"dry_run": True})
    world.requests.requests.clear()
    for _ in range(3):
        tasks.file_pending_reports()
        tasks.poll_admin_accounts()
    # No filing and no look for an earlier attempt (the polls' outcome sync lists resolved reports, not these).
    assert not [(m, p) for m, p, q in world.requests.requests
                if (m == "POST" and "reports" in p) or "target_account_id" in q]
    runtime.update({"dry_run": False})
    assert tasks.file_pending_reports()["reports"] == {"filed": 1}


def test_a_report_limit_429_pauses_filing_only(world):
    """Item 1: a report-limit window (app/lib/rate_limiter.rb, reports family) does not close the gate for polls,
    webhooks and analyses; decisions wait and are filed when it opens, oldest evidence first."""
    refused = MASTODON_REQUESTS.labels("/api/v1/reports", "POST", "429")
    refused_before = refused._value.get()
    with running(accounts=0, reports_per_day=1, paging_limit=100_000) as sim:
        limited = MastodonClient(sim.base_url, DEFAULT_ADMIN_TOKEN)
        made = [requests.post(f"{sim.base_url}/_sim/accounts", json={"username": f"s{i}", "domain": "spam.example"},
                              timeout=10).json()["id"] for i in range(3)]
        outcomes = [reports.record_and_file(decision(a, []), "webhook", world.settings, limited)["outcome"] for a in made]
        assert outcomes == ["filed", "waiting", "waiting"]
        assert len(sim.state.reports) == 1
        # The answer to the first report showed the report family's headers: nothing more was sent, no 429.
        assert ratelimit.blocked("reports") is not None
        # Analyses and polls go on: only the report family is spent.
        assert ratelimit.acquire(priority=False) is None
        assert tasks.poll_admin_accounts()["outcome"] == "polled"
        assert tasks.analyze_and_maybe_report(world.add_clean("calm"), "webhook")["outcome"] == "analysed"
        waiting = [r for r in rows() if r.state == "pending"]
        assert [r.account_id for r in waiting] == made[1:]
        # The day turns (here: the simulator's window and modwatch's reset, moved): filed oldest first, one a day.
        sim.state.limits.reports = FixedWindow(1, 86_400, "reports")
        world.redis.hset(ratelimit.key_of("reports"), mapping={"reset": 1, "remaining": 0})
        with session_scope() as session:
            session.execute(update(Report).values(not_before=None))
        results = reports.file_due(limited, world.settings)
        assert [r["account_id"] for r in results if r["outcome"] == "filed"] == made[1:2]
        assert [r.state for r in rows(made[2])] == ["pending"]
        assert len(sim.state.reports) == 2
    assert refused._value.get() == refused_before  # not one 429


def test_polls_page_within_their_share_of_the_paging_limit(world, monkeypatch):
    """Item 1: the default polling (2 origins x 5 pages every 30 s) would use the whole paging limit."""
    monkeypatch.setenv("POLL_PAGING_SHARE", "0.1")  # 30 of 300 per 15 minutes
    monkeypatch.setenv("POLL_MAX_PAGES", "100")
    get_settings.cache_clear()
    for i in range(5):
        world.add_clean(f"page{i}", domain="far.example")
    monkeypatch.setattr(polling, "PAGE_LIMIT", 1)
    first_window = time.time() // 900  # Mastodon's paging windows are on the 15-minute grid
    pages = 0
    for _ in range(10):
        result = tasks.poll_admin_accounts()
        pages += result.get("pages", 0)
    paging = [q for m, p, q in world.requests.requests if p.startswith("/api/v2/admin/accounts")
              and any(q.get(k) for k in ("min_id", "max_id", "since_id"))]
    state = ratelimit.state(["paging"])["paging"]
    windows = int(time.time() // 900 - first_window) + 1  # a run across a window's end has two shares
    assert state["ours"] <= 30 and len(paging) <= 30 * windows
    assert windows > 1 or len(paging) == state["ours"]
    assert len(paging) >= 1 and pages > len(paging)  # some pages without a cursor, the rest within the share


def test_an_instance_base_answering_404_fails_the_job_instead_of_recording_gone(world, monkeypatch):
    """Item 7: a 404 that is not Mastodon's `{"error": ...}` is a misconfiguration, not a vanished account."""

    class NotMastodon(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>404 Not Found</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotMastodon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("INSTANCE_BASE", f"http://127.0.0.1:{server.server_port}")
        get_settings.cache_clear()
        with pytest.raises(MastodonError, match="check INSTANCE_BASE"):
            tasks.analyze_and_maybe_report("12345", "webhook")
    finally:
        server.shutdown()


def test_reports_the_account_filed_today_without_modwatch_are_counted_before_the_first_report(world):
    """Item 1: app/lib/rate_limiter.rb counts every report of the account since 00:00 UTC; no header shows the
    report family until it is the nearest limit, so the day's count is read from Mastodon's own listing."""
    target = world.add_spammer("earlier")
    for index in range(3):  # a moderator's reports with the same account, by hand
        requests.post(f"{world.sim.base_url}/api/v1/reports", json={"account_id": target, "comment": f"mine {index}"},
                      headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}, timeout=10).raise_for_status()
    assert reports.sync_report_budget(client(world)) == 400 - 3
    assert ratelimit.state(["reports"])["reports"]["remaining"] == 400 - 3
    assert reports.sync_report_budget(client(world)) is None  # once a day
    listed = [q for q in world.requests.params("GET", "/api/v1/admin/reports") if "account_id" in q]
    assert len(listed) == 2  # open and resolved, one page each


def test_a_resolution_read_by_the_outcome_sync_lets_held_evidence_become_the_next_report(world):
    """report.updated / the outcome sync (moderation/outcomes.py) close modwatch's open report at once."""
    from modwatch.moderation import outcomes

    account = world.add_account("twice", ["crypto giveaway one", "crypto giveaway two"], domain="spam.example")
    first, second = sorted(posts(world, account), key=int)
    assert reports.record_and_file(decision(account, [first]), "webhook", world.settings, client(world))["outcome"] \
        == "filed"
    assert reports.record_and_file(decision(account, [first, second]), "webhook", world.settings,
                                   client(world))["outcome"] == "held"
    [report] = world.filed(account)
    resolved = requests.post(f"{world.sim.base_url}/_sim/reports/{report['id']}/resolve", timeout=10).json()
    outcomes.record([resolved])
    assert [r.state for r in rows(account)] == ["resolved", "pending"]
    assert [r["outcome"] for r in reports.file_due(client(world), world.settings)] == ["filed"]
    assert len(world.filed(account)) == 2
