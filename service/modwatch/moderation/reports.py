"""The report path: a decision is recorded first, filed exactly once, and never lost.

`record_and_file(scored, source, settings, client)` is the one entry point for every analysis
(polls, webhooks, the stream). It writes the decision in its own transaction, then files it when
filing is allowed; otherwise the row waits, costing no Mastodon request, and `file_due` (a
recurring job) files it when its time comes, oldest evidence first.

- One open report per account: the account's first decision becomes `pending`, then `filed`. New
  evidence while that report is open is recorded `held` behind it (visible in
  /moderation/accounts/{id}), not filed. Once Mastodon says the report is resolved (checked by
  `file_due` for accounts with held evidence, or told by `mark_resolved`), the newest held
  decision is filed as the next report and older ones are `superseded` by it.
- Exactly once: a worker claims the row before calling Mastodon. A timeout or 5xx on create may
  have created the report unseen (Mastodon finishes a request the client gave up on): the row is
  marked in doubt and, before any new attempt, the report is looked for by the marker in its
  comment, `LOOKUPS_BEFORE_REFILE` times with growing pauses, so a slow server's report is
  found instead of filed twice.
- Nothing decided is lost: decisions under PANIC_STOP are kept `pending` and filed when it is
  lifted; decisions under DRY_RUN are kept `dry_run` until an operator files them (`approve`);
  a rate-limit refusal leaves the row pending until the reset (a report-limit 429 pauses filing
  only). A 404 on create is looked into: the account gone or suspended ends it (`failed: gone`),
  a vanished or hidden post is dropped and the report filed without it. A 422 naming stale rule
  ids drops those ids (a violation left with none becomes `other`) and files again.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict, cast

import structlog
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError

from modwatch.connection import get_redis
from modwatch.mastodon.client import MastodonClient, RateLimit
from modwatch.mastodon.errors import (
    ForbiddenError,
    GoneError,
    MastodonError,
    NotSentError,
    RateLimitedError,
    RetryableError,
    UnauthorizedError,
    UnprocessableError,
)
from modwatch.mastodon import families
from modwatch.moderation import ratelimit, runtime
from modwatch.moderation.analysis import Scored, domain_of
from modwatch.redis_keys import DOMAIN_VIOLATIONS_KEY, REPORT_BUDGET_SYNCED_KEY
from modwatch.settings import Settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import OPEN_STATES, AuditEntry, DomainViolation, Report
from modwatch.telemetry.metrics import REPORTS

log = structlog.get_logger(__name__)

MARKER_PREFIX = "modwatch:"
# Longer than a filing can take (client timeout 10 s, the lookups, a refile after a 404): a live
# claim is never taken over, and a killed worker's claim lapses by itself.
CLAIM_SECONDS = 90
MAX_COMMENT = 1000  # Mastodon's limit (app/models/report.rb)
# Reports on one account searched for our marker (Mastodon's page maximum).
DUPLICATE_SEARCH_LIMIT = 200
# After a create that may have reached Mastodon, look this many times, this long after the doubt
# arose, before filing again: Mastodon keeps working on a request the client (10 s) or a proxy
# (nginx: 60 s) gave up on, so the report can appear minutes later.
LOOKUP_DELAYS_SECONDS = (20, 60, 180)
LOOKUPS_BEFORE_REFILE = len(LOOKUP_DELAYS_SECONDS)
# Rows `file_due` tries per run, and open reports it asks Mastodon about (accounts with held evidence).
FILE_BATCH = 20
RESOLUTION_BATCH = 5
# How often an open report with held evidence behind it is checked for resolution.
RESOLUTION_CHECK_SECONDS = 600
# Posts checked one by one after a 404 on create (a report names a handful).
MAX_STATUS_CHECKS = 10
# The day's report budget is read from Mastodon's listing of our own reports once a day: at most two
# pages of 200 per listing (400 reports a day), open and resolved.
BUDGET_PAGES = 2
# A refused token is an operator's to fix: pending rows try again this much later.
UNAUTHORIZED_RETRY_SECONDS = 300


class ReportRequest(TypedDict):
    """What one POST /api/v1/reports sends: MastodonClient.file_report's arguments."""

    account_id: str
    status_ids: list[str]
    comment: str
    category: str
    forward: bool
    rule_ids: list[str] | None


def marker(dedupe_key: str) -> str:
    return f"{MARKER_PREFIX}{dedupe_key}"


def comment_for(scored: Scored) -> str:
    analysis = scored.analysis
    tail = f" {marker(analysis.evidence_key())}"
    text = (f"modwatch: score {analysis.score:g} (threshold {scored.threshold:g}); "
            f"rules: {', '.join(analysis.rule_names)}.")
    # The marker must survive truncation: it is how a retry recognises its own report.
    return text[: MAX_COMMENT - len(tail) - 1].rstrip() + tail


def category_for(scored: Scored) -> tuple[str, list[str] | None]:
    """Mastodon's category and rule ids: a `violation` report names the instance rules broken."""
    category = scored.analysis.category or "other"
    if category != "violation":
        return category, None
    rule_ids = list(scored.analysis.instance_rule_ids)
    return ("violation", rule_ids) if rule_ids else ("other", None)


def _audit(session, decision: str, account_id: str | None, source: str | None, key: str | None = None,
           reason: str | None = None) -> None:
    session.add(AuditEntry(decision=decision, account_id=account_id, source=source, dedupe_key=key, reason=reason))


def audit(decision: str, account_id: str | None, source: str | None, key: str | None = None,
          reason: str | None = None) -> None:
    with session_scope() as session:
        _audit(session, decision, account_id, source, key, reason)
    log.info("moderation_decision", decision=decision, account_id=account_id, source=source, reason=reason)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


# ---------------------------------------------------------------------------------------------
# Recording a decision


def record_and_file(scored: Scored, source: str, settings: Settings, client: MastodonClient | None = None) -> dict:
    """Record the decision to report `scored.account` and, given a client, file it when allowed.

    Never raises for a rate limit: what cannot be filed now waits for `file_due`. The outcome is
    one of filed, waiting, held, dry_run, duplicate, failed.
    """
    key = scored.analysis.evidence_key()
    account_id = str(scored.account.get("id"))
    switches = runtime.current(settings)
    if switches.dry_run:
        row_id, created = _insert(scored, settings, dry_run=True)
        if not created:
            return _outcome("duplicate", "duplicate", account_id, source, key, "already recorded in dry run",
                            report_row=row_id)
        return _outcome("dry_run", "skipped_dry_run", account_id, source, key,
                        "DRY_RUN is on: kept for an operator to file (POST /moderation/reports/{id}/file)",
                        report_row=row_id)
    row_id, created = _insert(scored, settings, dry_run=False)
    with session_scope() as session:
        row = session.get_one(Report, row_id)
        state, held_by = row.state, row.held_by
    if not created:
        return _outcome("duplicate", "duplicate", account_id, source, key, f"already decided (report row {row_id})",
                        report_row=row_id)
    if state == "held":
        return _outcome("held", "held", account_id, source, key,
                        f"report row {held_by} is still open for this account: evidence kept, filed after it is resolved",
                        report_row=row_id)
    if switches.panic_stop:
        _set(row_id, reason="decided under PANIC_STOP: filed when it is lifted")
        return _outcome("waiting", "panic_stop", account_id, source, key, "PANIC_STOP is on: filed when it is lifted",
                        report_row=row_id)
    if client is None:
        return _outcome("waiting", "pending", account_id, source, key, "recorded; filed by file_due",
                        report_row=row_id)
    return file_row(row_id, source, client, settings)


def _insert(scored: Scored, settings: Settings, dry_run: bool) -> tuple[int, bool]:
    """The row for this decision, and whether it was created now (False: it existed already).

    A real decision is `pending` unless the account already has an open report: then `held`
    behind it. The partial unique index keeps two jobs from both opening one."""
    key = scored.analysis.evidence_key()
    account_id = str(scored.account.get("id"))
    domain = domain_of(scored.account)
    category, rule_ids = category_for(scored)
    wanted = select(Report.id).where(Report.dedupe_key == key, Report.dry_run == dry_run)
    for _ in range(3):  # an open row found, then resolved meanwhile, or opened meanwhile
        try:
            with session_scope() as session:
                existing = session.scalar(wanted)
                if existing is not None:
                    return existing, False
                first_time = session.scalar(select(Report.id).where(Report.dedupe_key == key).limit(1)) is None
                open_row = None if dry_run else _open_row(session, account_id)
                row = Report(
                    dedupe_key=key, dry_run=dry_run,
                    state="dry_run" if dry_run else ("held" if open_row is not None else "pending"),
                    held_by=open_row, account_id=account_id, domain=domain, category=category,
                    comment=comment_for(scored), status_ids=scored.analysis.status_ids, rule_ids=rule_ids,
                    forward=settings.report_forward and domain is not None, score=scored.analysis.score,
                    attempts=0, lookups=0, operator_filed=False,
                )
                session.add(row)
                if first_time and domain:
                    _count_violation(session, domain)
                session.flush()
                row_id = row.id
        except IntegrityError:
            continue  # the same key decided, or an open row made, by another job: look again
        if first_time and domain:
            get_redis().zincrby(DOMAIN_VIOLATIONS_KEY, 1, domain)
        return row_id, True
    with session_scope() as session:
        existing = session.scalar(wanted)
    if existing is None:
        raise RuntimeError(f"could not record the decision {key} for account {account_id}")
    return existing, False


def _open_row(session, account_id: str) -> int | None:
    return session.scalar(select(Report.id).where(Report.account_id == account_id, Report.dry_run.is_(False),
                                                  Report.state.in_(OPEN_STATES)))


def _count_violation(session, domain: str) -> None:
    counted = session.get(DomainViolation, domain)
    if counted is None:
        session.add(DomainViolation(domain=domain, violations=1))
    else:
        counted.violations += 1
        counted.last_violation_at = _now()


# ---------------------------------------------------------------------------------------------
# Filing


def file_row(row_id: int, source: str, client: MastodonClient, settings: Settings) -> dict:
    """Bring a pending row to `filed` if it may be filed now; otherwise leave it waiting, with no request."""
    with session_scope() as session:
        row = session.get_one(Report, row_id)
        key, account_id, state = row.dedupe_key, row.account_id, row.state
        operator, not_before, in_doubt = row.operator_filed, _aware(row.not_before), row.doubt_since is not None
    if state != "pending":
        return _outcome("duplicate", "duplicate", account_id, source, key, f"report row is {state}", report_row=row_id)
    switches = runtime.current(settings)
    if switches.panic_stop:
        return _waiting(row_id, account_id, source, key, "PANIC_STOP is on: filed when it is lifted", count=False)
    if switches.dry_run and not operator:
        return _waiting(row_id, account_id, source, key, "DRY_RUN was switched on after the decision", count=False)
    if not_before is not None and not_before > _now():
        return _waiting(row_id, account_id, source, key, f"not before {not_before.isoformat()}", count=False)
    attempts = _claim(row_id)
    if attempts is None:
        return _outcome("duplicate", "duplicate", account_id, source, key, "another worker is filing it",
                        report_row=row_id)
    try:
        if in_doubt:
            found = _look_for_earlier_attempt(row_id, client)
            if found is not None:
                _finish(row_id, "filed", mastodon_report_id=found)
                return _outcome("filed", "reported", account_id, source, key,
                                f"an earlier attempt filed it as report {found}", report_row=row_id)
            with session_scope() as session:
                row = session.get_one(Report, row_id)
                still_in_doubt, lookups = row.doubt_since is not None, row.lookups
            if still_in_doubt:
                wait = LOOKUP_DELAYS_SECONDS[lookups]
                _release(row_id, not_before=_now() + timedelta(seconds=wait))
                return _waiting(row_id, account_id, source, key,
                                f"an earlier attempt may have filed it; looking again in {wait} s ({lookups} looks)")
        return _file(row_id, source, client, settings, account_id, key)
    except RateLimitedError as exc:
        ratelimit.exhausted(client.ratelimit, exc.reset_at)
        _release(row_id, not_before=exc.reset_at)
        return _waiting(row_id, account_id, source, key, f"rate limited ({', '.join(exc.families) or 'global'}) "
                        f"until {exc.reset_at.isoformat()}")
    except _Wait as wait:
        _release(row_id, not_before=wait.wait.until)
        return _waiting(row_id, account_id, source, key,
                        f"{wait.wait.family} budget spent until {wait.wait.reset_at.isoformat()}")
    except RetryableError as exc:
        # Lookups are in doubt too: the claim is given back and the next run looks again.
        _release(row_id, not_before=_now() + timedelta(seconds=max(exc.retry_after_seconds, 1)))
        return _waiting(row_id, account_id, source, key, f"Mastodon unavailable: {exc}")
    except UnauthorizedError as exc:
        # The token, not the report: kept until an operator fixes MASTODON_ACCESS_TOKEN.
        _release(row_id, not_before=_now() + timedelta(seconds=UNAUTHORIZED_RETRY_SECONDS))
        return _waiting(row_id, account_id, source, key, f"the token was refused: {exc}")
    except ForbiddenError as exc:
        return _give_up(row_id, "forbidden", account_id, source, key,
                        f"missing scope {exc.missing_scope or 'unknown'}: {exc}")
    except MastodonError as exc:
        return _give_up(row_id, "rejected", account_id, source, key, str(exc))
    finally:
        ratelimit.observe_answers(client)


class _Wait(Exception):
    """The gate refused a request this filing needs."""

    def __init__(self, wait: ratelimit.Wait):
        super().__init__(wait.family)
        self.wait = wait


def _gate(report: bool = False) -> None:
    wait = ratelimit.acquire_report() if report else ratelimit.acquire(priority=True, book=False)
    if wait is not None:
        raise _Wait(wait)


def _file(row_id: int, source: str, client: MastodonClient, settings: Settings, account_id: str, key: str) -> dict:
    """POST the report; after a 404 or a stale-rule 422, correct the row and post once more."""
    for attempt in range(2):
        with session_scope() as session:
            row = session.get_one(Report, row_id)
            request = ReportRequest(account_id=row.account_id, status_ids=list(row.status_ids or []), comment=row.comment,
                           category=row.category, forward=row.forward, rule_ids=row.rule_ids)
        try:
            filed = _post(row_id, client, request)
        except GoneError as exc:
            if attempt or not _drop_what_vanished(row_id, client, request):
                return _gone(row_id, account_id, source, key, str(exc))
            continue
        except UnprocessableError as exc:
            if attempt or not request["rule_ids"] or not _drop_stale_rules(row_id, client, request["rule_ids"]):
                return _give_up(row_id, "rejected", account_id, source, key, str(exc))
            continue
        except NotSentError as exc:
            return _give_up(row_id, "rejected", account_id, source, key, str(exc))
        if filed is None:
            _release(row_id, not_before=_now() + timedelta(seconds=LOOKUP_DELAYS_SECONDS[0]))
            return _waiting(row_id, account_id, source, key,
                            "the create may have reached Mastodon: looking for it before filing again")
        _finish(row_id, "filed", mastodon_report_id=str(filed.get("id")))
        return _outcome("filed", "reported", account_id, source, key, f"Mastodon report {filed.get('id')}",
                        report_row=row_id)
    raise AssertionError("unreachable")  # the loop returns on its second attempt


def sync_report_budget(client: MastodonClient) -> int | None:
    """Once a day, count the reports the token's account filed since 00:00 UTC (Mastodon's report
    window) and note what is left on the report family; None when already done today.

    The account may have filed reports without modwatch (a moderator's own token), and no answer
    shows the report family until it is the nearest limit: without this the first sign would be a 429.
    """
    now = _now().timestamp()
    reset = (now // families.REPORTS.period + 1) * families.REPORTS.period
    key = REPORT_BUDGET_SYNCED_KEY.format(reset=int(reset))
    if get_redis().exists(key):
        return None
    _gate()
    me = str(client.verify_credentials()["id"])
    day_start = reset - families.REPORTS.period
    filed = 0
    for resolved in (False, True):
        max_id = None
        for _ in range(BUDGET_PAGES):
            _gate()
            page = client.admin_reports(DUPLICATE_SEARCH_LIMIT, resolved=resolved, account_id=me, max_id=max_id)
            today = [r for r in page if _created(r) >= day_start]
            filed += len(today)
            if len(today) < len(page) or len(page) < DUPLICATE_SEARCH_LIMIT:
                break
            max_id = min((str(r["id"]) for r in page), key=int)
    left = max(families.REPORTS.limit - filed, 0)
    ratelimit.observe(RateLimit(families.REPORTS.limit, left, datetime.fromtimestamp(reset, timezone.utc),
                                (families.REPORTS.name,)))
    get_redis().set(key, filed, exat=int(reset) + 60)
    log.info("report_budget_synced", filed_today=filed, left=left)
    return left


def _created(report: dict) -> float:
    try:
        return datetime.fromisoformat(str(report.get("created_at")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return _now().timestamp()  # unreadable: counted as today's, the careful side


def _post(row_id: int, client: MastodonClient, request: ReportRequest) -> dict | None:
    """POST /api/v1/reports once; None when the answer was lost (timeout, 5xx): the row stays in doubt."""
    sync_report_budget(client)
    _gate(report=True)
    # Written ahead: from here until Mastodon's answer is read, the report may exist unseen. A worker
    # killed meanwhile leaves the row in doubt, and the next attempt looks before filing.
    _set(row_id, doubt_since=_now(), lookups=0)
    try:
        return client.file_report(**request)
    except RateLimitedError:
        _set(row_id, doubt_since=None)  # a 429 created nothing
        raise
    except RetryableError as exc:
        _set(row_id, reason=f"in doubt after {exc}")
        return None
    except MastodonError:
        _set(row_id, doubt_since=None)  # Mastodon answered: nothing was created
        raise


def _drop_what_vanished(row_id: int, client: MastodonClient, request: ReportRequest) -> bool:
    """After a 404 on create: True when posts had vanished and the row now names only visible ones.

    Mastodon answers the same 404 for a deleted or suspended account and for any attached post no
    longer visible (app/services/report_service.rb), so the account is looked at first."""
    _gate()
    try:
        account = client.account(request["account_id"])
    except GoneError:
        return False
    if account.get("suspended"):
        return False
    vanished = []
    for status_id in request["status_ids"][:MAX_STATUS_CHECKS]:
        _gate()
        try:
            client.status(status_id)
        except GoneError:
            vanished.append(status_id)
    kept = [s for s in request["status_ids"] if s not in vanished]
    if not vanished and len(request["status_ids"]) <= MAX_STATUS_CHECKS:
        return False  # every post is there: the 404 is not theirs
    if not vanished:
        kept = []  # too many to check one by one: file on the account alone
    _set(row_id, status_ids=kept, reason=f"posts no longer visible, filed without them: {', '.join(vanished) or 'unchecked'}")
    log.info("report_refiled_without_posts", row=row_id, vanished=vanished)
    return True


def _drop_stale_rules(row_id: int, client: MastodonClient, rule_ids: list[str]) -> bool:
    """After a 422 on a violation: drop rule ids the instance no longer lists; True when some were dropped."""
    _gate()
    current = {str(rule.get("id")) for rule in client.instance_rules()}
    kept = [r for r in rule_ids if r in current]
    if len(kept) == len(rule_ids):
        return False
    stale = [r for r in rule_ids if r not in current]
    _set(row_id, rule_ids=kept or None, category="violation" if kept else "other",
         reason=f"instance rule ids {', '.join(stale)} no longer exist: filed without them")
    return True


def _look_for_earlier_attempt(row_id: int, client: MastodonClient) -> str | None:
    """One look for the report an earlier attempt may have created; the row counts the look."""
    with session_scope() as session:
        row = session.get_one(Report, row_id)
        account_id, key = row.account_id, row.dedupe_key
    found = _find_on_mastodon(client, account_id, key)
    with session_scope() as session:
        row = session.get_one(Report, row_id)
        row.lookups += 1
        if found is None and row.lookups >= LOOKUPS_BEFORE_REFILE:
            row.doubt_since = None  # looked long enough: it was never created
            row.reason = f"no earlier report found after {row.lookups} looks: filing again"
    return found


def _find_on_mastodon(client: MastodonClient, account_id: str, key: str) -> str | None:
    """The id of a report on `account_id` whose comment carries our marker for `key`."""
    wanted = marker(key)
    # Filtered by target, open and resolved: a moderator may have resolved it in the meantime.
    for resolved in (False, True):
        _gate()
        for report in client.admin_reports(DUPLICATE_SEARCH_LIMIT, resolved=resolved, target_account_id=account_id):
            target = report.get("target_account") or {}
            if str(target.get("id")) == account_id and wanted in (report.get("comment") or ""):
                return str(report.get("id"))
    return None


# ---------------------------------------------------------------------------------------------
# What waits: file_due, resolution, operators


def file_due(client: MastodonClient, settings: Settings, source: str = "file_due") -> list[dict]:
    """File what waits and may be filed now, oldest evidence first; learn which open reports with
    held evidence behind them were resolved. Rows that cannot be filed yet cost no request."""
    switches = runtime.current(settings)
    if switches.panic_stop:
        return []
    results = check_resolved(client, settings)
    now = _now()
    due = [Report.state == "pending", Report.dry_run.is_(False),
           or_(Report.not_before.is_(None), Report.not_before <= now), _claim_lapsed(now)]
    if switches.dry_run:
        due.append(Report.operator_filed.is_(True))
    with session_scope() as session:
        ids = session.scalars(select(Report.id).where(*due).order_by(Report.created_at, Report.id)
                              .limit(FILE_BATCH)).all()
    for row_id in ids:
        if ratelimit.blocked("reports") is not None:
            break  # the day's reports are spent: the rest wait, at no cost
        results.append(file_row(row_id, source, client, settings))
    return results


def check_resolved(client: MastodonClient, settings: Settings) -> list[dict]:
    """Ask Mastodon about filed reports that have evidence held behind them (not more often than
    RESOLUTION_CHECK_SECONDS each); a resolved one lets the held evidence become the next report."""
    now = _now()
    held = select(Report.held_by).where(Report.state == "held")
    with session_scope() as session:
        rows = session.execute(
            select(Report.id, Report.mastodon_report_id).where(
                Report.state == "filed", Report.id.in_(held),
                or_(Report.checked_at.is_(None), Report.checked_at < now - timedelta(seconds=RESOLUTION_CHECK_SECONDS)))
            .order_by(Report.checked_at.nullsfirst(), Report.id).limit(RESOLUTION_BATCH)).all()
    results = []
    for row_id, mastodon_id in rows:
        if mastodon_id is None:  # never for a filed row; the column is empty before filing
            continue
        if ratelimit.acquire(priority=True, book=False) is not None:
            break
        try:
            answer = client.admin_report(mastodon_id)
        except GoneError:
            answer = {"action_taken": True}  # deleted on Mastodon: nothing open any more
        except MastodonError as exc:
            log.info("resolution_check_failed", row=row_id, error=str(exc))
            break
        finally:
            ratelimit.observe_answers(client)
        _set(row_id, checked_at=_now())
        if answer.get("action_taken"):
            results.append(_resolve(row_id))
    return results


def mark_resolved(mastodon_report_id: str) -> dict | None:
    """A moderator resolved modwatch's report (the `report.updated` webhook, outcome reading):
    the account's held evidence, if any, becomes the next report."""
    with session_scope() as session:
        row_id = session.scalar(select(Report.id).where(Report.mastodon_report_id == str(mastodon_report_id),
                                                        Report.state == "filed"))
    return _resolve(row_id) if row_id is not None else None


def _resolve(row_id: int) -> dict:
    """Close the open report; the newest held decision becomes pending, older ones superseded by it."""
    with session_scope() as session:
        row = session.get_one(Report, row_id)
        row.state, row.resolved_at, row.updated_at = "resolved", _now(), _now()
        account_id, key = row.account_id, row.dedupe_key
        session.flush()
        held = session.scalars(select(Report).where(Report.held_by == row_id, Report.state == "held")
                               .order_by(Report.id.desc())).all()
        promoted = None
        if held:
            promoted = held[0]
            promoted.state, promoted.held_by, promoted.updated_at = "pending", None, _now()
            promoted.reason = f"report row {row_id} was resolved: filed as the next report"
            for older in held[1:]:
                older.state, older.held_by = "superseded", promoted.id
                older.reason = f"superseded by the newer evidence in report row {promoted.id}"
    return _outcome("resolved", "resolved", account_id, "file_due", key,
                    f"report row {row_id} resolved on Mastodon" + (f"; row {promoted.id} is next" if promoted else ""),
                    report_row=row_id)


def approve(row_ids: list[int] | None = None) -> list[dict]:
    """Operators file dry-run decisions: the given rows, or all of them (None), oldest first.

    Each becomes a real decision (pending, or held behind the account's open report) filed by the
    next `file_due` run, even while DRY_RUN is on. A row whose evidence was already decided for real
    is marked superseded by that decision."""
    where = [Report.dry_run.is_(True), Report.state == "dry_run"]
    if row_ids is not None:
        where.append(Report.id.in_(row_ids))
    with session_scope() as session:
        ids = session.scalars(select(Report.id).where(*where).order_by(Report.created_at, Report.id)).all()
    return [_approve(row_id) for row_id in ids]


def _approve(row_id: int) -> dict:
    for _ in range(3):
        try:
            with session_scope() as session:
                row = session.get_one(Report, row_id)
                real = session.scalar(select(Report.id).where(Report.dedupe_key == row.dedupe_key,
                                                              Report.dry_run.is_(False)))
                if real is not None:
                    row.state, row.held_by = "superseded", real
                    row.reason = f"the same evidence was decided for real as report row {real}"
                    return {"id": row_id, "state": "superseded", "report_row": real}
                open_row = _open_row(session, row.account_id)
                row.dry_run, row.operator_filed, row.held_by = False, True, open_row
                row.state = "held" if open_row is not None else "pending"
                row.reason = "filed by an operator"
                row.updated_at = _now()
                state = row.state
            return {"id": row_id, "state": state, "report_row": row_id}
        except IntegrityError:
            continue  # an open row appeared meanwhile: held behind it on the next turn
    raise RuntimeError(f"could not approve report row {row_id}")


# ---------------------------------------------------------------------------------------------
# Row bookkeeping


def _claim_lapsed(now: datetime):
    return or_(Report.claimed_until.is_(None), Report.claimed_until < now)


def _claim(row_id: int) -> int | None:
    """Compare-and-set the claim; the attempt number, or None when someone else holds it."""
    now = _now()
    with session_scope() as session:
        # An UPDATE's result is a CursorResult, which counts the rows it changed.
        taken = cast(CursorResult[Any], session.execute(
            update(Report)
            .where(Report.id == row_id, Report.state == "pending", _claim_lapsed(now))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=Report.attempts + 1, updated_at=now)
        )).rowcount
        return session.get_one(Report, row_id).attempts if taken == 1 else None


def _set(row_id: int, **values: Any) -> None:
    with session_scope() as session:
        session.execute(update(Report).where(Report.id == row_id).values(updated_at=_now(), **values))


def _release(row_id: int, not_before: datetime | None = None) -> None:
    _set(row_id, claimed_until=None, not_before=not_before)


def _finish(row_id: int, state: str, mastodon_report_id: str | None = None, reason: str | None = None) -> None:
    values: dict[str, Any] = dict(state=state, claimed_until=None, not_before=None, doubt_since=None)
    if mastodon_report_id is not None:
        values["mastodon_report_id"] = mastodon_report_id
    if reason is not None:
        values["reason"] = reason
    _set(row_id, **values)


def _give_up(row_id: int, decision: str, account_id: str, source: str, key: str, reason: str) -> dict:
    """The report cannot be filed: record why; the account's held evidence becomes the next decision."""
    _finish(row_id, "failed", reason=f"{decision}: {reason}")
    _promote_held(row_id)
    return _outcome("failed", decision, account_id, source, key, reason, report_row=row_id)


def _gone(row_id: int, account_id: str, source: str, key: str, reason: str) -> dict:
    """The account is gone or suspended: its held evidence can never be filed either."""
    _finish(row_id, "failed", reason=f"gone: {reason}")
    with session_scope() as session:
        session.execute(update(Report).where(Report.held_by == row_id, Report.state == "held").values(
            state="failed", reason=f"gone: the account's report row {row_id} found it gone", updated_at=_now()))
    return _outcome("failed", "gone", account_id, source, key, reason, report_row=row_id)


def _promote_held(row_id: int) -> None:
    with session_scope() as session:
        held = session.scalars(select(Report).where(Report.held_by == row_id, Report.state == "held")
                               .order_by(Report.id.desc())).all()
        if held:
            held[0].state, held[0].held_by = "pending", None
            for older in held[1:]:
                older.held_by = held[0].id


def _waiting(row_id: int, account_id: str, source: str, key: str, reason: str, count: bool = True) -> dict:
    """Not filed now, kept pending. `count`: a new reason worth an audit line (a row found not yet due is not)."""
    if count:
        _set(row_id, reason=reason)
        return _outcome("waiting", "waiting", account_id, source, key, reason, report_row=row_id)
    return {"outcome": "waiting", "decision": "waiting", "account_id": account_id, "dedupe_key": key,
            "reason": reason, "report_row": row_id}


def _outcome(outcome: str, decision: str, account_id: str, source: str, key: str, reason: str,
             report_row: int | None = None) -> dict:
    REPORTS.labels(outcome=outcome).inc()
    audit(decision, account_id, source, key, reason)
    return {"outcome": outcome, "decision": decision, "account_id": account_id, "dedupe_key": key,
            "reason": reason, "report_row": report_row}
