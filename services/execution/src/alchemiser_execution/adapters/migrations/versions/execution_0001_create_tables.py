"""Create the execution runs and order attempts tables.

Revision ID: execution_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "execution_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _decimal() -> sa.types.TypeEngine[Any]:
    """Exact decimals: unconstrained NUMERIC, text on SQLite (see ``ExactDecimal``)."""
    return sa.Numeric().with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Create ``execution_runs`` and ``execution_order_attempts``."""
    op.create_table(
        "execution_runs",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("input_event_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("refused_symbols", sa.Text(), nullable=False),
        sa.Column("orders", sa.Text(), nullable=False),
        sa.Column("trading_day", sa.Date(), nullable=False),
        sa.Column("reserved_value", _decimal(), nullable=False),
        sa.Column("traded_value", _decimal(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_execution_runs"),
    )
    op.create_index(
        "ix_execution_runs_account_day", "execution_runs", ["account_id", "trading_day"]
    )
    op.create_table(
        "execution_order_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(48), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("qty", _decimal(), nullable=False),
        sa.Column("limit_price", _decimal(), nullable=True),
        sa.Column("close_position", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("broker_order_id", sa.String(64), nullable=True),
        sa.Column("broker_status", sa.String(32), nullable=True),
        sa.Column("filled_qty", _decimal(), nullable=False),
        sa.Column("filled_avg_price", _decimal(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_execution_order_attempts"),
        sa.UniqueConstraint(
            "account_id", "correlation_id", "leg", "attempt", name="uq_execution_attempt_leg"
        ),
        sa.UniqueConstraint("client_order_id", name="uq_execution_attempt_client_order_id"),
    )
    op.create_index("ix_execution_attempts_state", "execution_order_attempts", ["state"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_execution_attempts_state", table_name="execution_order_attempts")
    op.drop_table("execution_order_attempts")
    op.drop_index("ix_execution_runs_account_day", table_name="execution_runs")
    op.drop_table("execution_runs")
