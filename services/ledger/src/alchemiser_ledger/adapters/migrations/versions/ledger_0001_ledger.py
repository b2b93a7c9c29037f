"""Create the ledger: workflows, strategy targets, trades and their parts, account snapshots
and the notification outbox.

Revision ID: ledger_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from alchemiser_common.db import ExactDecimal

revision = "ledger_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the ledger's tables."""
    op.create_table(
        "ledger_workflows",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("session", sa.Date(), nullable=True),
        sa.Column("signal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("equity_before", ExactDecimal(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("failure_step", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "correlation_id", name="pk_ledger_workflows"),
    )
    op.create_table(
        "ledger_allocations",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(255), nullable=False),
        sa.Column("allocation", ExactDecimal(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "correlation_id", "strategy", name="pk_ledger_allocations"
        ),
    )
    op.create_table(
        "ledger_targets",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(255), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("weight", ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "correlation_id", "strategy", "symbol", name="pk_ledger_targets"
        ),
    )
    op.create_table(
        "ledger_trades",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("session", sa.Date(), nullable=True),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("broker_order_id", sa.String(128), nullable=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("requested_qty", ExactDecimal(), nullable=True),
        sa.Column("notional", ExactDecimal(), nullable=True),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=True),
        sa.Column("fees", ExactDecimal(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "client_order_id", name="pk_ledger_trades"),
        sa.UniqueConstraint("account_id", "seq", name="uq_ledger_trades_account_seq"),
    )
    op.create_table(
        "ledger_fill_parts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(255), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("realised", ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "client_order_id", "strategy", name="pk_ledger_fill_parts"
        ),
    )
    op.create_table(
        "ledger_snapshots",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("equity", ExactDecimal(), nullable=False),
        sa.Column("cash", ExactDecimal(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "session", name="pk_ledger_snapshots"),
    )
    op.create_table(
        "ledger_snapshot_positions",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "session", "symbol", name="pk_ledger_snapshot_positions"),
    )
    op.create_table(
        "ledger_notifications",
        sa.Column("notification_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", "channel", name="pk_ledger_notifications"),
    )
    op.create_index(
        "ix_ledger_notifications_due", "ledger_notifications", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    """Drop the ledger's tables."""
    op.drop_index("ix_ledger_notifications_due", table_name="ledger_notifications")
    op.drop_table("ledger_notifications")
    op.drop_table("ledger_snapshot_positions")
    op.drop_table("ledger_snapshots")
    op.drop_table("ledger_fill_parts")
    op.drop_table("ledger_trades")
    op.drop_table("ledger_targets")
    op.drop_table("ledger_allocations")
    op.drop_table("ledger_workflows")
