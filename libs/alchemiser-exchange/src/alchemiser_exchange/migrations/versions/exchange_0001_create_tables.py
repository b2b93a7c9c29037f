"""Create the exchange's account, position and order tables.

Revision ID: exchange_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "exchange_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _decimal() -> sa.types.TypeEngine[Any]:
    """Exact decimals: unconstrained NUMERIC, text on SQLite (see ``ExactDecimal``)."""
    return sa.Numeric().with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Create ``exchange_account``, ``exchange_position`` and ``exchange_order``."""
    op.create_table(
        "exchange_account",
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("api_key_id", sa.String(128), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("cash", _decimal(), nullable=False),
        sa.Column("starting_cash", _decimal(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("trading_blocked", sa.Boolean(), nullable=False),
        sa.Column("session_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_number", name="pk_exchange_account"),
        sa.UniqueConstraint("api_key_id", name="uq_exchange_account_api_key_id"),
    )
    op.create_table(
        "exchange_position",
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("qty", _decimal(), nullable=False),
        sa.Column("avg_entry_price", _decimal(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_number", "symbol", name="pk_exchange_position"),
        sa.ForeignKeyConstraint(
            ["account_number"],
            ["exchange_account.account_number"],
            name="fk_exchange_position_account",
        ),
    )
    op.create_table(
        "exchange_order",
        sa.Column("broker_order_id", sa.String(64), nullable=False),
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
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
        sa.Column("session_date", sa.Date(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaces", sa.String(64), nullable=True),
        sa.Column("replaced_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("broker_order_id", name="pk_exchange_order"),
        sa.UniqueConstraint(
            "account_number",
            "client_order_id",
            name="uq_exchange_order_account_client_order_id",
        ),
        sa.UniqueConstraint(
            "account_number", "sequence", name="uq_exchange_order_account_sequence"
        ),
        sa.ForeignKeyConstraint(
            ["account_number"],
            ["exchange_account.account_number"],
            name="fk_exchange_order_account",
        ),
    )
    op.create_index(
        "ix_exchange_order_account_status", "exchange_order", ["account_number", "status"]
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_index("ix_exchange_order_account_status", table_name="exchange_order")
    op.drop_table("exchange_order")
    op.drop_table("exchange_position")
    op.drop_table("exchange_account")
