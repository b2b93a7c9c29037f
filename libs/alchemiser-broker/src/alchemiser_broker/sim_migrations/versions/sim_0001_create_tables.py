"""Create the simulated broker's account, position and order tables.

Revision ID: sim_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "sim_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _decimal() -> sa.types.TypeEngine[Any]:
    """Exact decimals: unconstrained NUMERIC, text on SQLite (see ``ExactDecimal``)."""
    return sa.Numeric().with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Create ``sim_account``, ``sim_position`` and ``sim_order``."""
    op.create_table(
        "sim_account",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("cash", _decimal(), nullable=False),
        sa.Column("starting_cash", _decimal(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_sim_account"),
    )
    op.create_table(
        "sim_position",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("qty", _decimal(), nullable=False),
        sa.Column("avg_entry_price", _decimal(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "symbol", name="pk_sim_position"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["sim_account.account_id"], name="fk_sim_position_account"
        ),
    )
    op.create_table(
        "sim_order",
        sa.Column("broker_order_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("qty", _decimal(), nullable=True),
        sa.Column("notional", _decimal(), nullable=True),
        sa.Column("target_qty", _decimal(), nullable=False),
        sa.Column("limit_price", _decimal(), nullable=True),
        sa.Column("reference_price", _decimal(), nullable=False),
        sa.Column("filled_qty", _decimal(), nullable=False),
        sa.Column("filled_avg_price", _decimal(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaces", sa.String(64), nullable=True),
        sa.Column("replaced_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("broker_order_id", name="pk_sim_order"),
        sa.UniqueConstraint(
            "account_id", "client_order_id", name="uq_sim_order_account_client_order_id"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["sim_account.account_id"], name="fk_sim_order_account"
        ),
    )
    op.create_index("ix_sim_order_account_status", "sim_order", ["account_id", "status"])


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_index("ix_sim_order_account_status", table_name="sim_order")
    op.drop_table("sim_order")
    op.drop_table("sim_position")
    op.drop_table("sim_account")
