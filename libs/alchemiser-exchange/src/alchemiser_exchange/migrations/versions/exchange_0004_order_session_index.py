"""Index ``exchange_order`` by account, session and sequence.

A session's orders (``GET /v2/orders`` with the exchange's ``session`` filter, which the
backtest reads after every session) were found by walking the account's orders newest first
through the (account, sequence) index, so the read grew with every order the account had
placed; with this index it reads that session's orders only.

Revision ID: exchange_0004
Revises: exchange_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "exchange_0004"
down_revision: str | None = "exchange_0003"
branch_labels: str | None = None
depends_on: str | None = None

_INDEX = "ix_exchange_order_account_session"


def upgrade() -> None:
    """Create the index."""
    op.create_index(_INDEX, "exchange_order", ["account_number", "session_date", "sequence"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(_INDEX, table_name="exchange_order")
