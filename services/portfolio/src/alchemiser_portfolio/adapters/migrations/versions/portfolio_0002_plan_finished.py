"""Mark each plan with when its workflow finished, and index the plans by it.

The previous-workflow gate asks for the account's plans whose workflow has not finished. It
checked every plan the account ever had against the finished workflows, so the read grew by
one plan a session (about 1 ms after ten years of daily sessions on SQLite); with the plans'
own ``finished_at`` and an (account, ``finished_at``) index it reads the unfinished ones only.
Existing plans take the finish time of their workflow's recorded outcome.

Revision ID: portfolio_0002
Revises: portfolio_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0002"
down_revision: str | None = "portfolio_0001"
branch_labels: str | None = None
depends_on: str | None = None

_INDEX = "ix_portfolio_plans_account_finished"


def upgrade() -> None:
    """Add ``portfolio_plans.finished_at``, fill it from the finished workflows, index it."""
    op.add_column(
        "portfolio_plans", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE portfolio_plans SET finished_at = ("
        " SELECT f.finished_at FROM portfolio_finished_workflows f"
        " WHERE f.account_id = portfolio_plans.account_id"
        " AND f.correlation_id = portfolio_plans.correlation_id)"
    )
    op.create_index(_INDEX, "portfolio_plans", ["account_id", "finished_at"])


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index(_INDEX, table_name="portfolio_plans")
    with op.batch_alter_table("portfolio_plans") as batch:
        batch.drop_column("finished_at")
