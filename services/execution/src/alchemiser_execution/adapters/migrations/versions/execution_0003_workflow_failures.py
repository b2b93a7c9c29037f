"""Record on ``execution_workflows`` that a workflow failed (``workflow.failed.v1``).

Three nullable columns: rows of workflows that did not fail keep them empty, so the upgrade
touches no existing row.

Revision ID: execution_0003
Revises: execution_0002
Create Date: 2025-06-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "execution_0003"
down_revision: str | None = "execution_0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``failed_at``, ``failure_step`` and ``failure_reason``."""
    op.add_column(
        "execution_workflows", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("execution_workflows", sa.Column("failure_step", sa.String(32), nullable=True))
    op.add_column("execution_workflows", sa.Column("failure_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the three columns (SQLite rebuilds the table)."""
    with op.batch_alter_table("execution_workflows") as batch:
        batch.drop_column("failure_reason")
        batch.drop_column("failure_step")
        batch.drop_column("failed_at")
