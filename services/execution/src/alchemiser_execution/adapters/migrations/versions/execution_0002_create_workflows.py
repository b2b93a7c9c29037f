"""Create the table of workflows execution has seen started.

Revision ID: execution_0002
Revises: execution_0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "execution_0002"
down_revision: str | None = "execution_0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``execution_workflows``."""
    op.create_table(
        "execution_workflows",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_execution_workflows"),
    )


def downgrade() -> None:
    """Drop ``execution_workflows``."""
    op.drop_table("execution_workflows")
