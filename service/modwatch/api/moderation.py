"""The /moderation router: reports, analyses, domains, dry evaluation, runtime switches, rules.

Every route needs the API key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer, model_validator
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
# A weight, score or threshold keeps the type it was written with in the rules file (3 stays 3).
Number = int | float


def _iso(value: datetime | None) -> str | None:
    moment = aware(value)
    return moment.isoformat() if moment is not None else None


# A stored time, shown in ISO 8601 with its zone (SQLite gives it back without one: it is UTC).
StoredTime = Annotated[datetime | None, PlainSerializer(_iso, return_type=str | None)]


class ReportView(BaseModel):
    """A report row as the API shows it (read from the row's attributes)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    state: ReportState
    dry_run: bool
    account_id: str
    domain: str | None
    mastodon_report_id: str | None
    category: str
    comment: str
    status_ids: list[str]
    rule_ids: list[str] | None
    forward: bool
    score: float
    dedupe_key: str
    attempts: int
    reason: str | None
    held_by: int | None
    operator_filed: bool
    not_before: StoredTime
    in_doubt_since: StoredTime = Field(validation_alias=AliasChoices("doubt_since", "in_doubt_since"))
    lookups: int
    resolved_at: StoredTime
    created_at: StoredTime
    updated_at: StoredTime


class AnalysisView(BaseModel):
    """An account analysis row as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    acct: str
    domain: str | None
    score: float
    threshold: float
    rule_names: list[str]
    evidence: list[dict[str, Any]] = Field(description="The hits: rule, weight, category, field, matched_text, status_id")
    evidence_key: str
    rules_hash: str
    statuses_count: int | None
    last_status_at: str | None
    analysed_at: StoredTime


class ReportPage(BaseModel):
    total: int
    offset: int
    limit: int
    reports: list[ReportView]


class Approval(BaseModel):
    id: int
    state: Literal["pending", "held", "superseded"]
    report_row: int = Field(description="The row that will be filed: this one, or the real decision it duplicates")


class Approved(BaseModel):
    approved: int
    reports: list[Approval]


class AuditView(BaseModel):
    at: str | None
    decision: str
    source: str | None
    reason: str | None


class AccountView(BaseModel):
    account_id: str
    analyses: list[AnalysisView]
    open_report: ReportView | None = Field(description="The account's one open modwatch report")
    held_evidence: list[ReportView] = Field(description="Evidence held behind the open report until it is resolved")
    reports: list[ReportView]
    audit: list[AuditView]


class DomainView(BaseModel):
    domain: str
    violations: int
    last_violation_at: str | None


class DomainPage(BaseModel):
    total: int
    domains: list[DomainView]


@router.get("/reports")
def list_reports(
    state: ReportState | None = Query(None, description="Only reports in this state"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> ReportPage:
    """Report decisions, newest first."""
    where = [Report.state == state] if state else []
    with session_scope() as session:
        total = session.scalar(select(func.count(Report.id)).where(*where))
        rows = session.scalars(select(Report).where(*where).order_by(Report.id.desc()).offset(offset).limit(limit)).all()
        return ReportPage(total=total or 0, offset=offset, limit=limit, reports=[ReportView.model_validate(row) for row in rows])


@router.post("/reports/dry-run/file")
def file_all_dry_run() -> Approved:
    """File every dry-run decision, oldest first: each becomes a real decision, filed by the next
    file_pending_reports run (even while DRY_RUN is on), one open report per account."""
    return _approved(reports.approve(None))


@router.post("/reports/{report_id}/file", responses={404: problem("No such report row"),
                                                       409: problem("The row is not a dry-run decision")})
def file_one_dry_run(report_id: int = Path(ge=1, le=2**31 - 1)) -> Approved:
    """File one dry-run decision (see POST /moderation/reports/dry-run/file)."""
    with session_scope() as session:
        row = session.get(Report, report_id)
        if row is None:
            raise HTTPException(404, f"report row {report_id} does not exist")
        if row.state != "dry_run":
            raise HTTPException(409, f"report row {report_id} is {row.state}, not a dry-run decision")
    return _approved(reports.approve([report_id]))


def _approved(approved: list[dict[str, Any]]) -> Approved:
    if approved:
        enqueue(tasks.file_pending_reports)  # now rather than at the next scheduled run
    return Approved(approved=len(approved), reports=[Approval.model_validate(item) for item in approved])


@router.get("/accounts/{account_id}", responses={404: problem("modwatch never analysed this account")})
def get_account(account_id: str = Path(pattern=r"^[0-9]{1,20}$")) -> AccountView:
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
        return AccountView(
            account_id=account_id,
            analyses=[AnalysisView.model_validate(row) for row in analyses],
            open_report=ReportView.model_validate(open_row) if open_row else None,
            held_evidence=[ReportView.model_validate(row) for row in rows if row.state == "held"],
            reports=[ReportView.model_validate(row) for row in rows],
            audit=[AuditView(at=_iso(a.at), decision=a.decision, source=a.source, reason=a.reason) for a in audit],
        )


@router.get("/domains")
def list_domains(offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(50, ge=1, le=500)) -> DomainPage:
    """Remote domains by number of accounts that crossed the report threshold, worst first."""
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(DomainViolation))
        rows = session.scalars(
            select(DomainViolation).order_by(DomainViolation.violations.desc(), DomainViolation.domain)
            .offset(offset).limit(limit)
        ).all()
        return DomainPage(
            total=total or 0,
            domains=[DomainView(domain=r.domain, violations=r.violations, last_violation_at=_iso(r.last_violation_at))
                     for r in rows],
        )


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


class HitView(BaseModel):
    rule: str
    weight: Number
    category: str
    field: str
    matched_text: str
    status_id: str | None


class Evaluation(BaseModel):
    account_id: str | None
    score: Number
    category: str | None
    rule_names: list[str]
    status_ids: list[str]
    evidence_key: str
    hits: list[HitView]
    threshold: Number
    would_report: bool
    rules_hash: str


@router.post("/evaluate")
def evaluate(request: EvaluateRequest, settings: Settings = Depends(settings_dependency)) -> Evaluation:
    """Score a posted account and its statuses with the active rules, without recording or filing."""
    scored = _rules_or_503(lambda: analysis.score(
        request.account.model_dump(exclude_none=True), [s.model_dump(exclude_none=True) for s in request.statuses],
        settings, runtime.current(settings), record=False))
    analysis.ACCOUNTS_SCANNED.labels(source="evaluate").inc()
    return Evaluation(**scored.analysis.as_dict(), threshold=scored.threshold, would_report=scored.reportable,
                      rules_hash=scored.rules_hash)


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool | None = None
    panic_stop: bool | None = None
    report_threshold: float | None = Field(None, gt=0, description="null removes the runtime override")


SETTINGS_HISTORY = 20


class SettingDefaults(BaseModel):
    dry_run: bool
    panic_stop: bool
    report_threshold: Number


Source = Literal["runtime", "env", "rules_file"]


class SettingSource(BaseModel):
    source: Source
    # For a runtime override only (absent otherwise): since when, and the key fingerprint that set it.
    since: str | None = None
    by: str | None = None


class SettingChangeView(BaseModel):
    at: str | None
    by: str | None
    change: str | None


class RuntimeSettings(BaseModel):
    dry_run: bool
    panic_stop: bool
    report_threshold: float | None = Field(description="The runtime override, or null")
    effective_report_threshold: Number
    defaults: SettingDefaults = Field(description="The values the runtime overrides replace")
    sources: dict[str, SettingSource] = Field(description="Where each value in force comes from")
    changes: list[SettingChangeView] = Field(description=f"The latest {SETTINGS_HISTORY} changes, newest first")


def settings_view(settings: Settings) -> RuntimeSettings:
    switches = runtime.current(settings)
    rules_threshold = _rules_or_503(lambda: analysis.current_rules(settings)).report_threshold
    overrides = runtime.overrides_meta()
    default_sources: dict[str, Source] = {"dry_run": "env", "panic_stop": "env",
                                          "report_threshold": "rules_file" if rules_threshold is not None else "env"}
    with session_scope() as session:
        history = session.scalars(select(AuditEntry).where(AuditEntry.decision == runtime.AUDIT_DECISION)
                                  .order_by(AuditEntry.id.desc()).limit(SETTINGS_HISTORY)).all()
        changes = [SettingChangeView(at=_iso(entry.at), by=entry.source, change=entry.reason) for entry in history]
    return RuntimeSettings(
        **switches.as_dict(),
        effective_report_threshold=runtime.report_threshold(switches, rules_threshold, settings),
        defaults=SettingDefaults(
            dry_run=settings.dry_run, panic_stop=settings.panic_stop,
            report_threshold=rules_threshold if rules_threshold is not None else settings.report_threshold),
        # A runtime override says since when and by whom; a default only where it comes from.
        sources={name: SettingSource(source="runtime", **overrides[name]) if name in overrides
                 else SettingSource(source=default_sources[name]) for name in runtime.SWITCHES},
        changes=changes,
    )


@router.get("/settings", response_model_exclude_unset=True)
def get_runtime_settings(settings: Settings = Depends(settings_dependency)) -> RuntimeSettings:
    """DRY_RUN, PANIC_STOP and the report threshold in force, where each comes from, the defaults
    they override and the latest changes."""
    return settings_view(settings)


@router.post("/settings", response_model_exclude_unset=True)
def change_runtime_settings(change: SettingsChange, settings: Settings = Depends(settings_dependency)) -> RuntimeSettings:
    """Toggle dry run or panic stop, or override the threshold, for every worker at once (audited)."""
    changes = change.model_dump(exclude_unset=True)
    if not changes:
        raise unprocessable("give at least one of dry_run, panic_stop, report_threshold")
    runtime.update(changes, by=key_fingerprint(settings))
    return settings_view(settings)


class RulePrecision(BaseModel):
    actioned: int
    dismissed: int
    precision: float | None = Field(description="actioned / (actioned + dismissed); null before any verdict")


class RulesPrecision(BaseModel):
    rules: dict[str, RulePrecision]


@router.get("/rules/precision")
def rules_precision() -> RulesPrecision:
    """Per rule, moderators' verdicts on the reports it contributed to: actioned, dismissed, and the
    share actioned (docs/detection.md)."""
    return RulesPrecision.model_validate({"rules": outcomes.precision()})


class RuleView(BaseModel):
    """A rule as the rules file gives it, defaults filled in; besides these fields, its detector's
    parameters (docs/rules.md)."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: str
    detector: str
    weight: Number
    category: str
    enabled: bool
    # Each present only where the rule has it.
    fields: list[str] | None = None
    instance_rule_ids: list[str] | None = None
    applies_to: dict[str, Number] | None = None


class RuleSetView(BaseModel):
    source: str
    hash: str
    report_threshold: Number | None
    allowed_domains: int = Field(description="How many domains no link rule counts")
    rules: list[RuleView]


@router.get("/rules", response_model_exclude_unset=True)
def get_rules(settings: Settings = Depends(settings_dependency)) -> RuleSetView:
    """The active rule set and its hash."""
    return RuleSetView.model_validate(_rules_or_503(lambda: analysis.current_rules(settings)).as_dict())


def _rules_or_503(load):
    try:
        return load()
    except RulesError as exc:
        raise HTTPException(503, f"no usable rules file: {exc}") from None
