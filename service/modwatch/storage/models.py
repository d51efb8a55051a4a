"""SQLAlchemy models. Every change comes with an Alembic migration (one head).

Mastodon ids are strings of digits: they are stored as strings and compared as integers in Python.
Times are UTC; SQLite drops the zone, so `aware()` puts it back when reading.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(32)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class PollCursor(Base):
    """Where polling of one origin stands.

    `newest_id`: the highest account id seen; later runs ask for what is above it (`min_id`).
    `sweep_max_id`: where the newest-to-oldest sweep continues (`max_id`); None means the next
    sweep starts again from the newest account, so old accounts are rescanned for new statuses.
    """

    __tablename__ = "poll_cursors"

    origin: Mapped[str] = mapped_column(String(16), primary_key=True)
    newest_id: Mapped[str | None] = mapped_column(ID)
    sweep_max_id: Mapped[str | None] = mapped_column(ID)
    sweeps_completed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AccountAnalysis(Base):
    __tablename__ = "account_analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ID, index=True)
    acct: Mapped[str] = mapped_column(String(512), default="")
    domain: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    rule_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    evidence_key: Mapped[str] = mapped_column(String(64))
    rules_hash: Mapped[str] = mapped_column(String(64))
    statuses_count: Mapped[int | None] = mapped_column(Integer)
    last_status_at: Mapped[str | None] = mapped_column(String(40))
    analysed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


# A report decision's states. Open: the account's one modwatch report (pending or filed, not yet
# resolved); new evidence meanwhile is `held` behind it.
OPEN_STATES = ("pending", "filed")
REPORT_STATES = ("pending", "filed", "resolved", "held", "superseded", "failed", "dry_run")


class Report(Base):
    """One report decision and its way to Mastodon.

    pending -> filed -> resolved, or failed; new evidence on an account with an open report is
    `held` (behind `held_by`) until that report is resolved, then the newest held row becomes
    pending and older ones `superseded`. dry_run rows stay dry_run until an operator files them.
    The dedupe key is unique per mode, so what a dry run recorded never blocks the real report;
    at most one open row per account (a partial unique index).
    """

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "dry_run", name="uq_reports_dedupe_key_dry_run"),
        Index("uq_reports_open_account", "account_id", unique=True,
              sqlite_where=text("state IN ('pending', 'filed') AND dry_run = 0"),
              postgresql_where=text("state IN ('pending', 'filed') AND dry_run = false")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), index=True)
    account_id: Mapped[str] = mapped_column(ID, index=True)
    domain: Mapped[str | None] = mapped_column(String(255))
    mastodon_report_id: Mapped[str | None] = mapped_column(ID)
    category: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    status_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_ids: Mapped[list[str] | None] = mapped_column(JSON)
    forward: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker filing the report holds it until then; a killed worker's claim simply lapses.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    # Not tried before then: a rate-limit window's reset, or the next look for an earlier attempt.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Since when an attempt may have created the report unseen (timeout, 5xx): look before filing again.
    doubt_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lookups: Mapped[int] = mapped_column(Integer, default=0)
    # The open report this evidence waits behind (state `held`), or the one that replaced it (`superseded`).
    held_by: Mapped[int | None] = mapped_column(Integer)
    # When modwatch last asked Mastodon whether the filed report was resolved, and when it was.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Filed by an operator through the API (a dry-run decision approved): files even while DRY_RUN is on.
    operator_filed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    decision: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[str | None] = mapped_column(ID, index=True)
    source: Mapped[str | None] = mapped_column(String(32))
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)


class DomainViolation(Base):
    __tablename__ = "domain_violations"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    violations: Mapped[int] = mapped_column(Integer, default=0)
    last_violation_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StreamPost(Base):
    """One post analysed from the streaming API (or filled in after a gap), with its decision.

    Unique per (status id, version): a post is analysed once, and again only when edited
    (`version` is its `edited_at`, empty for the original). `batch_id` and `trace_id` lead to the
    batch that decided it, `job_id` to the report job it started.
    """

    __tablename__ = "stream_posts"
    __table_args__ = (UniqueConstraint("status_id", "version", name="uq_stream_posts_status_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status_id: Mapped[str] = mapped_column(ID)
    version: Mapped[str] = mapped_column(String(40), default="")
    account_id: Mapped[str] = mapped_column(ID, index=True)
    stream: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(16))  # stream or gap_fill
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    score: Mapped[float] = mapped_column(Float)
    rule_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(24))
    batch_id: Mapped[str] = mapped_column(String(32))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(128))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StreamCursor(Base):
    """The newest status id a stream's decisions are recorded up to: where a gap fill starts."""

    __tablename__ = "stream_cursors"

    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_status_id: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
