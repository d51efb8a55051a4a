"""Moderation tables: poll cursors, analyses, reports, audit log, domain violations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "poll_cursors",
        sa.Column("origin", sa.String(16), primary_key=True),
        sa.Column("newest_id", ID),
        sa.Column("sweep_max_id", ID),
        sa.Column("sweeps_completed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "account_analyses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("acct", sa.String(512), nullable=False),
        sa.Column("domain", sa.String(255)),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("rule_names", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("evidence_key", sa.String(64), nullable=False),
        sa.Column("rules_hash", sa.String(64), nullable=False),
        sa.Column("statuses_count", sa.Integer),
        sa.Column("last_status_at", sa.String(40)),
        sa.Column("analysed_at", WHEN, nullable=False),
    )
    op.create_index("ix_account_analyses_account_id", "account_analyses", ["account_id"])
    op.create_index("ix_account_analyses_analysed_at", "account_analyses", ["analysed_at"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("domain", sa.String(255)),
        sa.Column("mastodon_report_id", ID),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("status_ids", sa.JSON, nullable=False),
        sa.Column("rule_ids", sa.JSON),
        sa.Column("forward", sa.Boolean, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", WHEN),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.UniqueConstraint("dedupe_key", "dry_run", name="uq_reports_dedupe_key_dry_run"),
    )
    op.create_index("ix_reports_state", "reports", ["state"])
    op.create_index("ix_reports_account_id", "reports", ["account_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("account_id", ID),
        sa.Column("source", sa.String(32)),
        sa.Column("dedupe_key", sa.String(64)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_decision", "audit_log", ["decision"])
    op.create_index("ix_audit_log_account_id", "audit_log", ["account_id"])
    op.create_table(
        "domain_violations",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("violations", sa.Integer, nullable=False),
        sa.Column("last_violation_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in ("domain_violations", "audit_log", "reports", "account_analyses", "poll_cursors"):
        op.drop_table(table)
