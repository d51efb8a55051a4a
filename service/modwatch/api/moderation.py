"""The /moderation router: reports, analyses, domains, dry evaluation, runtime switches, rules.

Every route needs the API key.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select

from modwatch.api.deps import MAX_OFFSET, key_fingerprint, require_api_key, settings_dependency
from modwatch.api.problems import AUTHENTICATED, problem, unprocessable
from modwatch.api.strictjson import StrictJSONRoute
from modwatch.jobs import tasks
from modwatch.jobs.enqueue import enqueue
from modwatch.moderation import analysis, outcomes, reports, runtime
from modwatch.moderation.engine import RulesError
from modwatch.settings import Settings
from modwatch.storage.db import session_scope
from modwatch.storage.models import OPEN_STATES, AccountAnalysis, AuditEntry, DomainViolation, Report, aware

router = APIRouter(
    prefix="/moderation", tags=["moderation"], dependencies=[Depends(require_api_key)], route_class=StrictJSONRoute,
    responses=AUTHENTICATED,
)

ReportState = Literal["pending", "filed", "resolved", "held", "superseded", "failed", "dry_run"]
MAX_STATUSES = 200
ACCOUNT_HISTORY = 20


def _iso(value) -> str | None:
    return aware(value).isoformat() if value is not None else None


def report_view(row: Report) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "dry_run": row.dry_run,
        "account_id": row.account_id,
        "domain": row.domain,
        "mastodon_report_id": row.mastodon_report_id,
        "category": row.category,
        "comment": row.comment,
        "status_ids": row.status_ids,
        "rule_ids": row.rule_ids,
        "forward": row.forward,
        "score": row.score,
        "dedupe_key": row.dedupe_key,
        "attempts": row.attempts,
        "reason": row.reason,
        "held_by": row.held_by,
        "operator_filed": row.operator_filed,
        "not_before": _iso(row.not_before),
        "in_doubt_since": _iso(row.doubt_since),
        "lookups": row.lookups,
        "resolved_at": _iso(row.resolved_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def analysis_view(row: AccountAnalysis) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "acct": row.acct,
        "domain": row.domain,
        "score": row.score,
        "threshold": row.threshold,
        "rule_names": row.rule_names,
        "evidence": row.evidence,
        "evidence_key": row.evidence_key,
        "rules_hash": row.rules_hash,
        "statuses_count": row.statuses_count,
        "last_status_at": row.last_status_at,
        "analysed_at": _iso(row.analysed_at),
    }


@router.get("/reports")
def list_reports(
    state: ReportState | None = Query(None, description="Only reports in this state"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Report decisions, newest first."""
    where = [Report.state == state] if state else []
    with session_scope() as session:
        total = session.scalar(select(func.count(Report.id)).where(*where))
        rows = session.scalars(select(Report).where(*where).order_by(Report.id.desc()).offset(offset).limit(limit)).all()
        return {"total": total, "offset": offset, "limit": limit, "reports": [report_view(row) for row in rows]}


@router.post("/reports/dry-run/file")
def file_all_dry_run() -> dict[str, Any]:
    """File every dry-run decision, oldest first: each becomes a real decision, filed by the next
    file_pending_reports run (even while DRY_RUN is on), one open report per account."""
    return _approved(reports.approve(None))


@router.post("/reports/{report_id}/file", responses={404: problem("No such report row"),
                                                       409: problem("The row is not a dry-run decision")})
def file_one_dry_run(report_id: int = Path(ge=1, le=2**31 - 1)) -> dict[str, Any]:
    """File one dry-run decision (see POST /moderation/reports/dry-run/file)."""
    with session_scope() as session:
        row = session.get(Report, report_id)
        if row is None:
            raise HTTPException(404, f"report row {report_id} does not exist")
        if row.state != "dry_run":
            raise HTTPException(409, f"report row {report_id} is {row.state}, not a dry-run decision")
    return _approved(reports.approve([report_id]))


def _approved(approved: list[dict[str, Any]]) -> dict[str, Any]:
    if approved:
        enqueue(tasks.file_pending_reports)  # now rather than at the next scheduled run
    return {"approved": len(approved), "reports": approved}


@router.get("/accounts/{account_id}", responses={404: problem("modwatch never analysed this account")})
def get_account(account_id: str = Path(pattern=r"^[0-9]{1,20}$")) -> dict[str, Any]:
    """An account's latest analyses with their evidence, its reports and its audit trail."""
    with session_scope() as session:
        analyses = session.scalars(
            select(AccountAnalysis).where(AccountAnalysis.account_id == account_id)
            .order_by(AccountAnalysis.id.desc()).limit(ACCOUNT_HISTORY)
        ).all()
        if not analyses:
            raise HTTPException(404, f"account {account_id} has not been analysed")
        rows = session.scalars(select(Report).where(Report.account_id == account_id).order_by(Report.id.desc())).all()
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.account_id == account_id)
            .order_by(AuditEntry.id.desc()).limit(ACCOUNT_HISTORY)
        ).all()
        open_row = next((row for row in rows if not row.dry_run and row.state in OPEN_STATES), None)
        return {
            "account_id": account_id,
            "analyses": [analysis_view(row) for row in analyses],
            # The account's one open modwatch report, and the evidence held behind it until it is resolved.
            "open_report": report_view(open_row) if open_row else None,
            "held_evidence": [report_view(row) for row in rows if row.state == "held"],
            "reports": [report_view(row) for row in rows],
            "audit": [{"at": _iso(a.at), "decision": a.decision, "source": a.source, "reason": a.reason} for a in audit],
        }


@router.get("/domains")
def list_domains(offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """Remote domains by number of accounts that crossed the report threshold, worst first."""
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(DomainViolation))
        rows = session.scalars(
            select(DomainViolation).order_by(DomainViolation.violations.desc(), DomainViolation.domain)
            .offset(offset).limit(limit)
        ).all()
        return {
            "total": total,
            "domains": [{"domain": r.domain, "violations": r.violations, "last_violation_at": _iso(r.last_violation_at)}
                        for r in rows],
        }


class EvaluateAccount(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field("0", pattern=r"^[0-9]{1,20}$")
    username: str = Field(min_length=1, max_length=512)
    acct: str | None = None
    display_name: str = ""
    note: str = ""
    created_at: str | None = None


class EvaluateStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^[0-9]{1,20}$")
    content: str = ""
    created_at: str | None = None


class EvaluateRequest(BaseModel):
    account: EvaluateAccount
    statuses: list[EvaluateStatus] = Field(default_factory=list, max_length=MAX_STATUSES)

    @model_validator(mode="after")
    def _unique_status_ids(self) -> EvaluateRequest:
        ids = [status.id for status in self.statuses]
        if len(ids) != len(set(ids)):
            raise ValueError("statuses: ids must be unique")
        return self


@router.post("/evaluate")
def evaluate(request: EvaluateRequest, settings: Settings = Depends(settings_dependency)) -> dict[str, Any]:
    """Score a posted account and its statuses with the active rules, without recording or filing."""
    scored = _rules_or_503(lambda: analysis.score(
        request.account.model_dump(exclude_none=True), [s.model_dump(exclude_none=True) for s in request.statuses],
        settings, runtime.current(settings), record=False))
    analysis.ACCOUNTS_SCANNED.labels(source="evaluate").inc()
    return {**scored.analysis.as_dict(), "threshold": scored.threshold, "would_report": scored.reportable,
            "rules_hash": scored.rules_hash}


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool | None = None
    panic_stop: bool | None = None
    report_threshold: float | None = Field(None, gt=0, description="null removes the runtime override")


SETTINGS_HISTORY = 20


def settings_view(settings: Settings) -> dict[str, Any]:
    switches = runtime.current(settings)
    rules_threshold = _rules_or_503(lambda: analysis.current_rules(settings)).report_threshold
    overrides = runtime.overrides_meta()
    default_sources = {"dry_run": "env", "panic_stop": "env",
                       "report_threshold": "rules_file" if rules_threshold is not None else "env"}
    with session_scope() as session:
        history = session.scalars(select(AuditEntry).where(AuditEntry.decision == runtime.AUDIT_DECISION)
                                  .order_by(AuditEntry.id.desc()).limit(SETTINGS_HISTORY)).all()
        changes = [{"at": _iso(entry.at), "by": entry.source, "change": entry.reason} for entry in history]
    return {
        **switches.as_dict(),
        "effective_report_threshold": runtime.report_threshold(switches, rules_threshold, settings),
        "defaults": {"dry_run": settings.dry_run, "panic_stop": settings.panic_stop,
                     "report_threshold": rules_threshold if rules_threshold is not None else settings.report_threshold},
        # Where each value in force comes from: a runtime override (since when, set by whom), or its default.
        "sources": {name: {"source": "runtime", **overrides[name]} if name in overrides else {"source": default_sources[name]}
                    for name in runtime.SWITCHES},
        "changes": changes,
    }


@router.get("/settings")
def get_runtime_settings(settings: Settings = Depends(settings_dependency)) -> dict[str, Any]:
    """DRY_RUN, PANIC_STOP and the report threshold in force, where each comes from, the defaults
    they override and the latest changes."""
    return settings_view(settings)


@router.post("/settings")
def change_runtime_settings(change: SettingsChange, settings: Settings = Depends(settings_dependency)) -> dict[str, Any]:
    """Toggle dry run or panic stop, or override the threshold, for every worker at once (audited)."""
    changes = change.model_dump(exclude_unset=True)
    if not changes:
        raise unprocessable("give at least one of dry_run, panic_stop, report_threshold")
    runtime.update(changes, by=key_fingerprint(settings))
    return settings_view(settings)


@router.get("/rules/precision")
def rules_precision() -> dict[str, Any]:
    """Per rule, moderators' verdicts on the reports it contributed to: actioned, dismissed, and the
    share actioned (docs/detection.md)."""
    return {"rules": outcomes.precision()}


@router.get("/rules")
def get_rules(settings: Settings = Depends(settings_dependency)) -> dict[str, Any]:
    """The active rule set and its hash."""
    return _rules_or_503(lambda: analysis.current_rules(settings)).as_dict()


def _rules_or_503(load):
    try:
        return load()
    except RulesError as exc:
        raise HTTPException(503, f"no usable rules file: {exc}") from None
