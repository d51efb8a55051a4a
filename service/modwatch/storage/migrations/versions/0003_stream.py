"""Streaming consumer: analysed posts with their decisions, and the cursor per stream.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(32)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status_id", ID, nullable=False),
        sa.Column("version", sa.String(40), nullable=False, server_default=""),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("stream", sa.String(32), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("posted_at", WHEN),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("rule_names", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("job_id", sa.String(128)),
        sa.Column("deleted_at", WHEN),
        sa.UniqueConstraint("status_id", "version", name="uq_stream_posts_status_version"),
    )
    op.create_index("ix_stream_posts_account_id", "stream_posts", ["account_id"])
    op.create_index("ix_stream_posts_decided_at", "stream_posts", ["decided_at"])
    op.create_table(
        "stream_cursors",
        sa.Column("stream", sa.String(32), primary_key=True),
        sa.Column("last_status_id", ID),
        sa.Column("updated_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_cursors")
    op.drop_index("ix_stream_posts_decided_at", "stream_posts")
    op.drop_index("ix_stream_posts_account_id", "stream_posts")
    op.drop_table("stream_posts")
