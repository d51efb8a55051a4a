"""Report path: waiting (not_before), in-doubt lookups, held evidence, resolution, operator filing;
at most one open report per account.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("not_before", WHEN))
        batch.add_column(sa.Column("doubt_since", WHEN))
        batch.add_column(sa.Column("lookups", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("held_by", sa.Integer))
        batch.add_column(sa.Column("checked_at", WHEN))
        batch.add_column(sa.Column("resolved_at", WHEN))
        batch.add_column(sa.Column("operator_filed", sa.Boolean, nullable=False, server_default=sa.false()))
    # Rows written before: one open row per account may not hold; older open duplicates are superseded.
    op.execute(
        "UPDATE reports SET state = 'superseded' WHERE dry_run = false AND state IN ('pending', 'filed') "
        "AND id NOT IN (SELECT max(id) FROM reports WHERE dry_run = false AND state IN ('pending', 'filed') "
        "GROUP BY account_id)"
    )
    op.create_index("uq_reports_open_account", "reports", ["account_id"], unique=True,
                    sqlite_where=sa.text("state IN ('pending', 'filed') AND dry_run = 0"),
                    postgresql_where=sa.text("state IN ('pending', 'filed') AND dry_run = false"))


def downgrade() -> None:
    op.drop_index("uq_reports_open_account", "reports")
    with op.batch_alter_table("reports") as batch:
        for column in ("operator_filed", "resolved_at", "checked_at", "held_by", "lookups", "doubt_since",
                       "not_before"):
            batch.drop_column(column)
