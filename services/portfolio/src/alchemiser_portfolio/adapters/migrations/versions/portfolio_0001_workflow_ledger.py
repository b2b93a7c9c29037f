"""Create the workflow ledger: the plans emitted and the workflows finished, per account.

Revision ID: portfolio_0001
Revises:
Create Date: 2025-03-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``portfolio_plans`` and ``portfolio_finished_workflows``."""
    op.create_table(
        "portfolio_plans",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_portfolio_plans"),
    )
    op.create_table(
        "portfolio_finished_workflows",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "correlation_id", name="pk_portfolio_finished_workflows"
        ),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("portfolio_finished_workflows")
    op.drop_table("portfolio_plans")
