"""Index ``execution_runs`` by account and last change.

The executor asks, before each plan, when the account's latest other run last changed. That
read went through every run the account ever had; with this index it reads the newest first
and stops at the first that counts.

Revision ID: execution_0004
Revises: execution_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "execution_0004"
down_revision: str | None = "execution_0003"
branch_labels: str | None = None
depends_on: str | None = None

_INDEX = "ix_execution_runs_account_updated"


def upgrade() -> None:
    """Create the index."""
    op.create_index(_INDEX, "execution_runs", ["account_id", "updated_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(_INDEX, table_name="execution_runs")
