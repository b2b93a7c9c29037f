"""The simulated broker's tables (SQLAlchemy Core) and the mapping of rows to broker values.

Created by the migrations in ``sim_migrations/versions`` (version table
``alembic_version_simulated_broker``); keep the two in step (a test compares them). Every table
is keyed by ``account_id`` so several simulated accounts can share one database.

Decimals are exact in both back ends: ``NUMERIC`` without scale on PostgreSQL and the decimal's
text on SQLite (whose numeric affinity would go through a binary float).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from alchemiser_broker.models import BrokerOrder, OrderSide, OrderStatus, OrderType

__all__ = [
    "CLIENT_ORDER_ID_CONSTRAINT",
    "SIMULATED_BROKER_VERSION_TABLE",
    "ExactDecimal",
    "account_table",
    "as_utc",
    "metadata",
    "order_from_row",
    "order_table",
    "position_table",
]

SIMULATED_BROKER_VERSION_TABLE = "alembic_version_simulated_broker"
"""Alembic version table of the simulated broker's migration tree."""

CLIENT_ORDER_ID_CONSTRAINT = "uq_sim_order_account_client_order_id"
"""The unique constraint that makes a ``client_order_id`` usable once per account."""


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """A ``Decimal`` stored without loss: ``NUMERIC`` on PostgreSQL, text on SQLite."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``VARCHAR`` on SQLite, unconstrained ``NUMERIC`` elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Refuse anything but a finite ``Decimal``; SQLite gets its canonical text."""
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"expected a finite Decimal, got {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Text or numeric back to ``Decimal``."""
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


metadata = sa.MetaData()
"""The simulated broker's tables only."""

account_table = sa.Table(
    "sim_account",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("cash", ExactDecimal(), nullable=False),
    sa.Column("starting_cash", ExactDecimal(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", name="pk_sim_account"),
)

position_table = sa.Table(
    "sim_position",
    metadata,
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("avg_entry_price", ExactDecimal(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "symbol", name="pk_sim_position"),
    sa.ForeignKeyConstraint(
        ["account_id"], ["sim_account.account_id"], name="fk_sim_position_account"
    ),
)

order_table = sa.Table(
    "sim_order",
    metadata,
    sa.Column("broker_order_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("client_order_id", sa.String(128), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("time_in_force", sa.String(8), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    # As requested: exactly one of qty and notional; target_qty is what the order trades.
    sa.Column("qty", ExactDecimal(), nullable=True),
    sa.Column("notional", ExactDecimal(), nullable=True),
    sa.Column("target_qty", ExactDecimal(), nullable=False),
    sa.Column("limit_price", ExactDecimal(), nullable=True),
    # The price buying power is reserved at while the order is open (limit or fill price).
    sa.Column("reference_price", ExactDecimal(), nullable=False),
    sa.Column("filled_qty", ExactDecimal(), nullable=False),
    sa.Column("filled_avg_price", ExactDecimal(), nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replaces", sa.String(64), nullable=True),
    sa.Column("replaced_by", sa.String(64), nullable=True),
    sa.PrimaryKeyConstraint("broker_order_id", name="pk_sim_order"),
    sa.UniqueConstraint("account_id", "client_order_id", name=CLIENT_ORDER_ID_CONSTRAINT),
    sa.ForeignKeyConstraint(
        ["account_id"], ["sim_account.account_id"], name="fk_sim_order_account"
    ),
    sa.Index("ix_sim_order_account_status", "account_id", "status"),
)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def order_from_row(row: Mapping[Any, Any]) -> BrokerOrder:
    """The :class:`BrokerOrder` of one ``sim_order`` row."""
    return BrokerOrder(
        broker_order_id=row["broker_order_id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=OrderSide(row["side"]),
        order_type=OrderType(row["order_type"]),
        status=OrderStatus(row["status"]),
        qty=row["qty"],
        notional=row["notional"],
        limit_price=row["limit_price"],
        filled_qty=row["filled_qty"],
        filled_avg_price=row["filled_avg_price"],
        submitted_at=as_utc(row["submitted_at"]),
        filled_at=as_utc(row["filled_at"]),
        updated_at=as_utc(row["updated_at"]),
    )
