"""Add ``exchange_order.fees``: the commissions charged on an order's fills.

Existing orders were filled without commissions: the server default gives them 0.

Revision ID: exchange_0002
Revises: exchange_0001
Create Date: 2026-12-15
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "exchange_0002"
down_revision: str | None = "exchange_0001"
branch_labels: str | None = None
depends_on: str | None = None


def _decimal() -> sa.types.TypeEngine[Any]:
    """Exact decimals: unconstrained NUMERIC, text on SQLite (see ``ExactDecimal``)."""
    return sa.Numeric().with_variant(sa.String(), "sqlite")


def upgrade() -> None:
    """Add ``fees`` (not null, 0 for the orders already there)."""
    op.add_column(
        "exchange_order",
        sa.Column("fees", _decimal(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Drop ``fees``."""
    with op.batch_alter_table("exchange_order") as batch:
        batch.drop_column("fees")
