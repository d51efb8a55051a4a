"""Filing a report exactly once per (account, evidence).

The decision is written first, in its own transaction, as a `pending` row whose dedupe key is
unique; only then is Mastodon called, and the row becomes `filed` with Mastodon's report id.
A worker claims the row for `CLAIM_SECONDS` before calling, so two jobs never file the same key
at once. When an earlier attempt may have reached Mastodon (a crash or timeout after the claim),
the next attempt first looks for a report carrying `modwatch:<key>` in its comment and adopts it
instead of filing again.

Dry run rows have their own slot in the unique key, so a dry run never blocks the real report.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from modwatch.connection import get_redis
from modwatch.mastodon.client import MastodonClient
from modwatch.mastodon.errors import ForbiddenError, GoneError, RetryableError, UnprocessableError
from modwatch.moderation import runtime
from modwatch.moderation.analysis import Scored, domain_of
from modwatch.settings import Settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import AuditEntry, DomainViolation, Report
from modwatch.telemetry.metrics import REPORTS

log = structlog.get_logger(__name__)

DOMAIN_VIOLATIONS_KEY = "modwatch:domain_violations"
MARKER_PREFIX = "modwatch:"
# Longer than a filing can take (client timeout 10 s, plus the duplicate check): a live claim is
# never taken over, and a killed worker's claim lapses by itself.
CLAIM_SECONDS = 60
MAX_COMMENT = 1000  # Mastodon's limit
# Reports on one account searched for our marker before filing again (Mastodon's page maximum).
DUPLICATE_SEARCH_LIMIT = 200
# Stale pending reports resumed per poll run.
RESUME_BATCH = 20


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


def _insert(scored: Scored, settings: Settings, dry_run: bool) -> tuple[int, bool]:
    """The row for this decision, and whether it was created now (False: it existed already)."""
    key = scored.analysis.evidence_key()
    domain = domain_of(scored.account)
    category, rule_ids = category_for(scored)
    wanted = select(Report.id).where(Report.dedupe_key == key, Report.dry_run == dry_run)
    try:
        with session_scope() as session:
            existing = session.scalar(wanted)
            if existing is not None:
                return existing, False
            first_time = session.scalar(select(Report.id).where(Report.dedupe_key == key).limit(1)) is None
            row = Report(
                dedupe_key=key, dry_run=dry_run, state="dry_run" if dry_run else "pending",
                account_id=str(scored.account.get("id")), domain=domain, category=category,
                comment=comment_for(scored), status_ids=scored.analysis.status_ids, rule_ids=rule_ids,
                forward=settings.report_forward and domain is not None, score=scored.analysis.score,
            )
            session.add(row)
            if first_time and domain:
                _count_violation(session, domain)
            session.flush()
            row_id = row.id
    except IntegrityError:
        # Another job decided the same key between our select and insert.
        with session_scope() as session:
            return session.scalar(wanted), False
    if first_time and domain:
        get_redis().zincrby(DOMAIN_VIOLATIONS_KEY, 1, domain)
    return row_id, True


def _count_violation(session, domain: str) -> None:
    counted = session.get(DomainViolation, domain)
    if counted is None:
        session.add(DomainViolation(domain=domain, violations=1))
    else:
        counted.violations += 1
        counted.last_violation_at = _now()


def report_once(scored: Scored, source: str, client: MastodonClient, settings: Settings) -> dict:
    """Decide and, unless dry run or panic stop, file the report for this analysis once."""
    key = scored.analysis.evidence_key()
    account_id = str(scored.account.get("id"))
    switches = runtime.current(settings)
    if switches.panic_stop:
        return _outcome("panic_stop", "panic_stop", account_id, source, key, "PANIC_STOP is on: nothing is written")
    if switches.dry_run:
        row_id, created = _insert(scored, settings, dry_run=True)
        if not created:
            return _outcome("duplicate", "duplicate", account_id, source, key, "already recorded in dry run")
        return _outcome("dry_run", "skipped_dry_run", account_id, source, key, "DRY_RUN is on", report_row=row_id)
    row_id, _ = _insert(scored, settings, dry_run=False)
    return file_pending(row_id, source, client, settings)


def file_pending(row_id: int, source: str, client: MastodonClient, settings: Settings) -> dict:
    """Take the row's claim and bring it to `filed`: adopt an earlier attempt's report or file it."""
    with session_scope() as session:
        row = session.get(Report, row_id)
        key, account_id, state = row.dedupe_key, row.account_id, row.state
    if state == "filed":
        return _outcome("duplicate", "duplicate", account_id, source, key, "already filed", report_row=row_id)
    attempts = _claim(row_id)
    if attempts is None:
        return _outcome("duplicate", "duplicate", account_id, source, key, "another worker is filing it",
                        report_row=row_id)
    try:
        if attempts > 1:
            found = _find_on_mastodon(client, account_id, key)
            if found is not None:
                _finish(row_id, "filed", mastodon_report_id=found)
                return _outcome("duplicate", "duplicate", account_id, source, key,
                                f"an earlier attempt filed it as report {found}", report_row=row_id)
        switches = runtime.current(settings)  # read again right before the write
        if switches.panic_stop or switches.dry_run:
            _release(row_id)
            if switches.panic_stop:
                return _outcome("panic_stop", "panic_stop", account_id, source, key, "PANIC_STOP is on: not filed")
            return _outcome("dry_run", "skipped_dry_run", account_id, source, key, "DRY_RUN was switched on")
        with session_scope() as session:
            row = session.get(Report, row_id)
            request = dict(account_id=row.account_id, status_ids=row.status_ids, comment=row.comment,
                           category=row.category, forward=row.forward, rule_ids=row.rule_ids)
        filed = client.file_report(**request)
    except RetryableError:
        _release(row_id)
        raise
    except GoneError as exc:
        return _give_up(row_id, "gone", account_id, source, key, str(exc))
    except ForbiddenError as exc:
        return _give_up(row_id, "forbidden", account_id, source, key,
                        f"missing scope {exc.missing_scope or 'unknown'}: {exc}")
    except UnprocessableError as exc:
        return _give_up(row_id, "rejected", account_id, source, key, str(exc))
    _finish(row_id, "filed", mastodon_report_id=str(filed.get("id")))
    return _outcome("filed", "reported", account_id, source, key, f"Mastodon report {filed.get('id')}",
                    report_row=row_id)


def resume_stale(client: MastodonClient, settings: Settings, source: str) -> list[dict]:
    """File pending reports whose job died or ran out of retries (their claim has lapsed)."""
    with session_scope() as session:
        ids = session.scalars(
            select(Report.id)
            .where(Report.state == "pending", Report.dry_run.is_(False), _claim_lapsed(_now()))
            .order_by(Report.id)
            .limit(RESUME_BATCH)
        ).all()
    return [file_pending(row_id, source, client, settings) for row_id in ids]


def _claim_lapsed(now: datetime):
    return or_(Report.claimed_until.is_(None), Report.claimed_until < now)


def _claim(row_id: int) -> int | None:
    """Compare-and-set the claim; the attempt number, or None when someone else holds it."""
    now = _now()
    with session_scope() as session:
        taken = session.execute(
            update(Report)
            .where(Report.id == row_id, Report.state.in_(("pending", "failed")), _claim_lapsed(now))
            .values(state="pending", claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                    attempts=Report.attempts + 1, updated_at=now)
        ).rowcount
        return session.get(Report, row_id).attempts if taken == 1 else None


def _release(row_id: int) -> None:
    with session_scope() as session:
        session.execute(update(Report).where(Report.id == row_id).values(claimed_until=None, updated_at=_now()))


def _finish(row_id: int, state: str, mastodon_report_id: str | None = None, reason: str | None = None) -> None:
    with session_scope() as session:
        session.execute(update(Report).where(Report.id == row_id).values(
            state=state, mastodon_report_id=mastodon_report_id, reason=reason, claimed_until=None, updated_at=_now()))


def _give_up(row_id: int, decision: str, account_id: str, source: str, key: str, reason: str) -> dict:
    _finish(row_id, "failed", reason=f"{decision}: {reason}")
    return _outcome("failed", decision, account_id, source, key, reason, report_row=row_id)


def _find_on_mastodon(client: MastodonClient, account_id: str, key: str) -> str | None:
    """The id of a report on `account_id` whose comment carries our marker for `key`."""
    wanted = marker(key)
    # Filtered by target, open and resolved: a moderator may have resolved it in the meantime.
    for resolved in (False, True):
        for report in client.admin_reports(DUPLICATE_SEARCH_LIMIT, resolved=resolved, target_account_id=account_id):
            target = report.get("target_account") or {}
            if str(target.get("id")) == account_id and wanted in (report.get("comment") or ""):
                return str(report.get("id"))
    return None


def _outcome(outcome: str, decision: str, account_id: str, source: str, key: str, reason: str,
             report_row: int | None = None) -> dict:
    REPORTS.labels(outcome=outcome).inc()
    audit(decision, account_id, source, key, reason)
    return {"outcome": outcome, "decision": decision, "account_id": account_id, "dedupe_key": key,
            "reason": reason, "report_row": report_row}
