"""Create the inbox and inbox_output tables.

Revision ID: inbox_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "inbox_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``inbox`` (primary key ``(consumer, dedupe_key)``) and ``inbox_output``."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("source_topic", sa.String(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("consumer", "dedupe_key", name="pk_inbox"),
    )
    op.create_table(
        "inbox_output",
        sa.Column("consumer", sa.String(), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "dedupe_key", "seq", name="pk_inbox_output"),
        sa.ForeignKeyConstraint(
            ["consumer", "dedupe_key"],
            ["inbox.consumer", "inbox.dedupe_key"],
            name="fk_inbox_output_inbox",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_table("inbox_output")
    op.drop_table("inbox")
