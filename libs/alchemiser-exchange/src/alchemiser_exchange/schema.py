"""The exchange's tables (SQLAlchemy Core) and the records read from them.

Created by the migrations in ``migrations/versions`` (version table
``alembic_version_exchange``); keep the two in step (a test compares them). Every table is
keyed by the account number, so one database holds any number of accounts.

Decimals are exact in both back ends: ``NUMERIC`` without scale on PostgreSQL and the decimal's
text on SQLite (whose numeric affinity would go through a binary float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from alchemiser_broker.models import OrderSide, OrderStatus, OrderType
from alchemiser_common.db import ExactDecimal, as_utc

__all__ = [
    "CLIENT_ORDER_ID_CONSTRAINT",
    "EXCHANGE_VERSION_TABLE",
    "AccountRecord",
    "ActivityType",
    "OrderRecord",
    "account_table",
    "activity_table",
    "metadata",
    "order_table",
    "position_table",
]

EXCHANGE_VERSION_TABLE = "alembic_version_exchange"
"""Alembic version table of the exchange's migration tree."""

CLIENT_ORDER_ID_CONSTRAINT = "uq_exchange_order_account_client_order_id"
"""The unique constraint that makes a ``client_order_id`` usable once per account."""


metadata = sa.MetaData()
"""The exchange's tables only."""

account_table = sa.Table(
    "exchange_account",
    metadata,
    sa.Column("account_number", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.String(128), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("cash", ExactDecimal(), nullable=False),
    sa.Column("starting_cash", ExactDecimal(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("trading_blocked", sa.Boolean(), nullable=False),
    sa.Column("session_date", sa.Date(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The earliest session the clock was set to or the account placed an order or had an
    # activity in: where its portfolio history starts (migration exchange_0003).
    sa.Column("first_session_date", sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint("account_number", name="pk_exchange_account"),
    sa.UniqueConstraint("api_key_id", name="uq_exchange_account_api_key_id"),
)

position_table = sa.Table(
    "exchange_position",
    metadata,
    sa.Column("account_number", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("qty", ExactDecimal(), nullable=False),
    sa.Column("avg_entry_price", ExactDecimal(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_number", "symbol", name="pk_exchange_position"),
    sa.ForeignKeyConstraint(
        ["account_number"],
        ["exchange_account.account_number"],
        name="fk_exchange_position_account",
    ),
)

order_table = sa.Table(
    "exchange_order",
    metadata,
    sa.Column("broker_order_id", sa.String(64), nullable=False),
    sa.Column("account_number", sa.String(64), nullable=False),
    sa.Column("client_order_id", sa.String(128), nullable=False),
    # The account's order counter: the order of submission (times are the session's clock).
    sa.Column("sequence", sa.BigInteger(), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("time_in_force", sa.String(8), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    # As requested: exactly one of qty and notional.
    sa.Column("qty", ExactDecimal(), nullable=True),
    sa.Column("notional", ExactDecimal(), nullable=True),
    sa.Column("target_qty", ExactDecimal(), nullable=False),
    sa.Column("limit_price", ExactDecimal(), nullable=True),
    # What an unfilled buy holds of the buying power, per share.
    sa.Column("reference_price", ExactDecimal(), nullable=False),
    sa.Column("filled_qty", ExactDecimal(), nullable=False),
    sa.Column("filled_avg_price", ExactDecimal(), nullable=True),
    sa.Column("session_date", sa.Date(), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replaces", sa.String(64), nullable=True),
    sa.Column("replaced_by", sa.String(64), nullable=True),
    # Commissions charged on the order's fills so far, in dollars (migration exchange_0002).
    sa.Column("fees", ExactDecimal(), nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("broker_order_id", name="pk_exchange_order"),
    sa.UniqueConstraint("account_number", "client_order_id", name=CLIENT_ORDER_ID_CONSTRAINT),
    sa.UniqueConstraint("account_number", "sequence", name="uq_exchange_order_account_sequence"),
    sa.ForeignKeyConstraint(
        ["account_number"],
        ["exchange_account.account_number"],
        name="fk_exchange_order_account",
    ),
    sa.Index("ix_exchange_order_account_status", "account_number", "status"),
    # A session's orders, newest first, without reading the account's other sessions
    # (migration exchange_0004).
    sa.Index("ix_exchange_order_account_session", "account_number", "session_date", "sequence"),
)


class ActivityType(StrEnum):
    """What one row of ``exchange_activity`` records (Alpaca's activity type codes)."""

    FILL = "FILL"
    """A fill: the position moves by the filled quantity, cash by the cost or proceeds and
    the commission."""
    JNLC = "JNLC"
    """A cash journal: the operator set the account's cash (``Exchange.set_cash``)."""
    JNLS = "JNLS"
    """A stock journal: the operator set a position (``Exchange.set_position``)."""


activity_table = sa.Table(
    "exchange_activity",
    metadata,
    sa.Column("account_number", sa.String(64), nullable=False),
    # The account's activity counter: the order in which the activities changed the account.
    sa.Column("sequence", sa.BigInteger(), nullable=False),
    sa.Column("activity_type", sa.String(8), nullable=False),
    sa.Column("session_date", sa.Date(), nullable=False),
    sa.Column("broker_order_id", sa.String(64), nullable=True),
    sa.Column("symbol", sa.String(32), nullable=True),
    # Signed: what the position in ``symbol`` and the cash moved by.
    sa.Column("position_change", ExactDecimal(), nullable=False),
    sa.Column("cash_change", ExactDecimal(), nullable=False),
    # The fill price (FILL) or the average entry price set (JNLS).
    sa.Column("price", ExactDecimal(), nullable=True),
    sa.Column("fee", ExactDecimal(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("account_number", "sequence", name="pk_exchange_activity"),
    sa.ForeignKeyConstraint(
        ["account_number"],
        ["exchange_account.account_number"],
        name="fk_exchange_activity_account",
    ),
)
"""The account's ledger (migration exchange_0003): every change of its cash or positions.

Replaying it session by session from the starting cash gives the account's equity at each
session's close (:mod:`alchemiser_exchange.history`).
"""


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account as stored (the secret only as its SHA-256)."""

    account_number: str
    api_key_id: str
    cash: Decimal
    starting_cash: Decimal
    currency: str
    trading_blocked: bool
    session_date: date | None
    created_at: datetime
    first_session_date: date | None = None
    """Where the account's portfolio history starts (``None``: no session recorded yet)."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AccountRecord:
        """The record of one ``exchange_account`` row."""
        created = as_utc(row["created_at"])
        assert created is not None
        return cls(
            account_number=row["account_number"],
            api_key_id=row["api_key_id"],
            cash=row["cash"],
            starting_cash=row["starting_cash"],
            currency=row["currency"],
            trading_blocked=bool(row["trading_blocked"]),
            session_date=row["session_date"],
            created_at=created,
            first_session_date=row["first_session_date"],
        )


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as stored, with everything Alpaca's order object reports."""

    broker_order_id: str
    account_number: str
    client_order_id: str
    sequence: int
    symbol: str
    side: OrderSide
    order_type: OrderType
    time_in_force: str
    status: OrderStatus
    qty: Decimal | None
    notional: Decimal | None
    target_qty: Decimal
    limit_price: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    session_date: date
    submitted_at: datetime
    filled_at: datetime | None
    canceled_at: datetime | None
    expired_at: datetime | None
    updated_at: datetime
    replaces: str | None
    replaced_by: str | None
    fees: Decimal = Decimal(0)
    """Commissions charged on the order's fills so far (not part of Alpaca's order object)."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OrderRecord:
        """The record of one ``exchange_order`` row."""
        submitted, updated = as_utc(row["submitted_at"]), as_utc(row["updated_at"])
        assert submitted is not None and updated is not None
        return cls(
            broker_order_id=row["broker_order_id"],
            account_number=row["account_number"],
            client_order_id=row["client_order_id"],
            sequence=int(row["sequence"]),
            symbol=row["symbol"],
            side=OrderSide(row["side"]),
            order_type=OrderType(row["order_type"]),
            time_in_force=row["time_in_force"],
            status=OrderStatus(row["status"]),
            qty=row["qty"],
            notional=row["notional"],
            target_qty=row["target_qty"],
            limit_price=row["limit_price"],
            filled_qty=row["filled_qty"],
            filled_avg_price=row["filled_avg_price"],
            session_date=row["session_date"],
            submitted_at=submitted,
            filled_at=as_utc(row["filled_at"]),
            canceled_at=as_utc(row["canceled_at"]),
            expired_at=as_utc(row["expired_at"]),
            updated_at=updated,
            replaces=row["replaces"],
            replaced_by=row["replaced_by"],
            fees=row["fees"],
        )
