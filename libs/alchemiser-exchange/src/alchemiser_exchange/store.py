"""Row-level operations of the exchange on one open connection (no commits here).

Every write path first calls :func:`lock_account`, which locks the account row (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the write lock from ``BEGIN
IMMEDIATE``), so concurrent requests (and exchange processes sharing a database) apply their
changes one account-transaction at a time.

The statements are built once, at import, with ``sa.bindparam`` placeholders that each call
fills in (``connection.execute(STATEMENT, params)``): SQLAlchemy then neither rebuilds nor
re-keys them for its compiled cache on every call. An UPDATE without ``.values()`` sets the
columns its parameters name, so the placeholders of WHERE clauses are named unlike any column
(``account``, ``asset`` for a symbol, ``order_id``): SQLAlchemy would add those to the SET.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, RowMapping

from alchemiser_broker.models import OrderSide
from alchemiser_common.db import fixed_values
from alchemiser_exchange.errors import DuplicateOrderError
from alchemiser_exchange.history import Activity
from alchemiser_exchange.rules import (
    FRICTIONLESS,
    OPEN_STATUSES,
    Costs,
    average_entry_price,
    cents,
)
from alchemiser_exchange.schema import (
    CLIENT_ORDER_ID_CONSTRAINT,
    AccountRecord,
    ActivityType,
    account_table,
    activity_table,
    order_table,
    position_table,
)

__all__ = [
    "Position",
    "apply_fill",
    "cash_held",
    "fees_paid",
    "insert_order",
    "lock_account",
    "next_sequence",
    "note_session",
    "open_orders",
    "read_activities",
    "read_positions",
    "record_activity",
    "reserved_cash",
    "sellable_qty",
    "update_account",
]


@dataclass(frozen=True, slots=True)
class Position:
    """A stored position."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal


_LOCK_ACCOUNT = (
    sa.select(account_table)
    .where(account_table.c.account_number == sa.bindparam("account"))
    .with_for_update()
)


def lock_account(connection: Connection, account_number: str) -> AccountRecord:
    """Lock the account row for this transaction and return it."""
    row = connection.execute(_LOCK_ACCOUNT, {"account": account_number}).mappings().one()
    return AccountRecord.from_row(row)


# SET: the columns named by the other parameters' keys.
_UPDATE_ACCOUNT = sa.update(account_table).where(
    account_table.c.account_number == sa.bindparam("account")
)


def update_account(connection: Connection, account_number: str, **values: Any) -> None:
    """Set columns of the account's row (``values``: column name to value)."""
    unknown = values.keys() - account_table.c.keys()
    if unknown:  # the statement would skip them silently
        raise TypeError(f"not columns of {account_table.name}: {sorted(unknown)}")
    connection.execute(_UPDATE_ACCOUNT, {**values, "account": account_number})


_READ_POSITIONS = (
    sa.select(position_table)
    .where(position_table.c.account_number == sa.bindparam("account"))
    .order_by(position_table.c.symbol)
)


def read_positions(connection: Connection, account_number: str) -> list[Position]:
    """Every open position of the account, by symbol."""
    return [
        Position(row["symbol"], row["qty"], row["avg_entry_price"])
        for row in connection.execute(_READ_POSITIONS, {"account": account_number}).mappings()
    ]


# No ORDER BY: SQLite would then walk the (account, sequence) index through every order the
# account ever placed to skip the sort; without it, the (account, status) index finds only the
# few working orders, sorted here.
_OPEN_ORDERS = sa.select(order_table).where(
    order_table.c.account_number == sa.bindparam("account"),
    order_table.c.status.in_(fixed_values(status.value for status in OPEN_STATUSES)),
)
_OPEN_ORDERS_OF_ASSET = _OPEN_ORDERS.where(order_table.c.symbol == sa.bindparam("asset"))


def _sequence(row: RowMapping) -> int:
    sequence: int = row["sequence"]
    return sequence


def open_orders(
    connection: Connection, account_number: str, *, symbol: str | None = None
) -> list[RowMapping]:
    """The account's working orders (optionally of one symbol), oldest first."""
    if symbol is None:
        result = connection.execute(_OPEN_ORDERS, {"account": account_number})
    else:
        result = connection.execute(
            _OPEN_ORDERS_OF_ASSET, {"account": account_number, "asset": symbol}
        )
    return sorted(result.mappings(), key=_sequence)


_LATEST_ORDER_SEQUENCE = sa.select(sa.func.max(order_table.c.sequence)).where(
    order_table.c.account_number == sa.bindparam("account")
)


def next_sequence(connection: Connection, account_number: str) -> int:
    """The number of the account's next order (the account is locked: no two get the same)."""
    latest = connection.execute(
        _LATEST_ORDER_SEQUENCE, {"account": account_number}
    ).scalar_one_or_none()
    return 1 if latest is None else int(latest) + 1


def _remaining(row: RowMapping) -> Decimal:
    remaining: Decimal = row["target_qty"] - row["filled_qty"]
    return remaining


def _hold(row: RowMapping, costs: Costs) -> Decimal:
    remaining, price = _remaining(row), row["reference_price"]
    return cents(remaining * price) + costs.commission(remaining, price)


def reserved_cash(
    connection: Connection, account_number: str, costs: Costs = FRICTIONLESS
) -> Decimal:
    """Cash held for the unfilled part of open buy orders (at their reference price).

    With commissions (``costs``) each hold includes the estimated commission of the rest.
    """
    return cash_held(open_orders(connection, account_number), costs)


def cash_held(working: Iterable[RowMapping], costs: Costs = FRICTIONLESS) -> Decimal:
    """:func:`reserved_cash` of the working orders ``working`` (as :func:`open_orders` reads)."""
    return sum(
        (_hold(row, costs) for row in working if row["side"] == OrderSide.BUY.value),
        Decimal(0),
    )


_FEES = sa.select(order_table.c.fees).where(order_table.c.account_number == sa.bindparam("account"))


def fees_paid(connection: Connection, account_number: str) -> Decimal:
    """The commissions charged on all the account's orders (summed exactly, in Python)."""
    fees = connection.execute(_FEES, {"account": account_number}).scalars()
    total: Decimal = sum(fees, Decimal(0))
    return total


# One position's row (parameters ``account`` and ``asset``, its symbol).
_POSITION_KEY = sa.and_(
    position_table.c.account_number == sa.bindparam("account"),
    position_table.c.symbol == sa.bindparam("asset"),
)
_POSITION = sa.select(position_table).where(_POSITION_KEY)
_POSITION_QTY = sa.select(position_table.c.qty).where(_POSITION_KEY)
_INSERT_POSITION = sa.insert(position_table)
_UPDATE_POSITION = sa.update(position_table).where(_POSITION_KEY)  # SET: as _UPDATE_ACCOUNT
_DELETE_POSITION = sa.delete(position_table).where(_POSITION_KEY)


def sellable_qty(
    connection: Connection,
    account_number: str,
    symbol: str,
    working: Iterable[RowMapping] | None = None,
) -> Decimal:
    """The position in ``symbol`` less what open sell orders already offer (``working``: the
    account's working orders when the caller has read them, else they are read here)."""
    key = {"account": account_number, "asset": symbol}
    held: Decimal = connection.execute(_POSITION_QTY, key).scalar_one_or_none() or Decimal(0)
    if working is None:
        working = open_orders(connection, account_number, symbol=symbol)
    offered = sum(
        (
            _remaining(row)
            for row in working
            if row["symbol"] == symbol and row["side"] == OrderSide.SELL.value
        ),
        Decimal(0),
    )
    return held - offered


def _is_client_order_id_conflict(error: sa_exc.IntegrityError) -> bool:
    original = error.orig
    diag = getattr(original, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return bool(diag.constraint_name == CLIENT_ORDER_ID_CONSTRAINT)
    # SQLite names the columns, not the constraint.
    text = str(original)
    return "UNIQUE constraint failed" in text and "client_order_id" in text


_INSERT_ORDER = sa.insert(order_table)


def insert_order(connection: Connection, row: dict[str, Any]) -> None:
    """Insert one order; the unique constraint turns a reused id into a duplicate error."""
    try:
        connection.execute(_INSERT_ORDER, row)
    except sa_exc.IntegrityError as err:
        if _is_client_order_id_conflict(err):
            raise DuplicateOrderError(row["client_order_id"]) from err
        raise


_NOTE_SESSION = (
    sa.update(account_table)
    .where(
        account_table.c.account_number == sa.bindparam("account"),
        sa.or_(
            account_table.c.first_session_date.is_(None),
            account_table.c.first_session_date > sa.bindparam("session"),
        ),
    )
    .values(first_session_date=sa.bindparam("session"))
)


def note_session(
    connection: Connection, account_number: str, session: date, first: date | None
) -> None:
    """Make ``session`` the account's first session if it is earlier than the one recorded.

    ``first``: the account's first session as read under its lock in this transaction. It
    only ever moves earlier, so a read from before this transaction's own changes still
    tells when nothing is to be written (``session`` not earlier than it): no statement then.
    """
    if first is not None and first <= session:
        return
    connection.execute(_NOTE_SESSION, {"account": account_number, "session": session})


_LATEST_ACTIVITY_SEQUENCE = sa.select(sa.func.max(activity_table.c.sequence)).where(
    activity_table.c.account_number == sa.bindparam("account")
)
_INSERT_ACTIVITY = sa.insert(activity_table)


def record_activity(
    connection: Connection,
    *,
    account_number: str,
    activity_type: ActivityType,
    session: date,
    now: datetime,
    cash_change: Decimal = Decimal(0),
    symbol: str | None = None,
    position_change: Decimal = Decimal(0),
    price: Decimal | None = None,
    fee: Decimal = Decimal(0),
    broker_order_id: str | None = None,
    first_session: date | None,
) -> None:
    """Append one change of the account's cash or positions to its ledger (account locked:
    the next sequence number is the account's own); ``first_session`` as ``note_session``'s
    ``first``."""
    latest = connection.execute(
        _LATEST_ACTIVITY_SEQUENCE, {"account": account_number}
    ).scalar_one_or_none()
    connection.execute(
        _INSERT_ACTIVITY,
        {
            "account_number": account_number,
            "sequence": 1 if latest is None else int(latest) + 1,
            "activity_type": activity_type.value,
            "session_date": session,
            "broker_order_id": broker_order_id,
            "symbol": symbol,
            "position_change": position_change,
            "cash_change": cash_change,
            "price": price,
            "fee": fee,
            "created_at": now,
        },
    )
    note_session(connection, account_number, session, first_session)


_ACTIVITIES_THROUGH = (
    sa.select(activity_table)
    .where(
        activity_table.c.account_number == sa.bindparam("account"),
        activity_table.c.session_date <= sa.bindparam("through"),
    )
    .order_by(activity_table.c.session_date, activity_table.c.sequence)
)


def read_activities(
    connection: Connection, account_number: str, *, through: date
) -> list[Activity]:
    """The account's activities of sessions up to ``through``, by session, then as recorded."""
    rows = connection.execute(_ACTIVITIES_THROUGH, {"account": account_number, "through": through})
    return [
        Activity(
            session=row["session_date"],
            symbol=row["symbol"],
            position_change=row["position_change"],
            cash_change=row["cash_change"],
            price=row["price"],
            transfer=row["activity_type"] != ActivityType.FILL.value,
        )
        for row in rows.mappings()
    ]


_CASH_AND_FIRST_SESSION = sa.select(account_table.c.cash, account_table.c.first_session_date).where(
    account_table.c.account_number == sa.bindparam("account")
)


def apply_fill(
    connection: Connection,
    *,
    account_number: str,
    broker_order_id: str,
    symbol: str,
    side: OrderSide,
    qty: Decimal,
    price: Decimal,
    session: date,
    now: datetime,
    fee: Decimal = Decimal(0),
) -> Decimal:
    """Move cash and the position for one fill (account locked) and record it in the
    account's ledger; returns the new position.

    A buy pays ``cents(qty * price) + fee``, a sell receives ``cents(qty * price) - fee``.
    """
    account = connection.execute(_CASH_AND_FIRST_SESSION, {"account": account_number}).one()
    cash: Decimal = account.cash
    amount = cents(qty * price)
    change = -amount - fee if side is OrderSide.BUY else amount - fee
    update_account(connection, account_number, cash=cash + change, updated_at=now)
    record_activity(
        connection,
        account_number=account_number,
        activity_type=ActivityType.FILL,
        session=session,
        now=now,
        cash_change=change,
        symbol=symbol,
        position_change=qty if side is OrderSide.BUY else -qty,
        price=price,
        fee=fee,
        broker_order_id=broker_order_id,
        first_session=account.first_session_date,
    )
    key = {"account": account_number, "asset": symbol}
    current = connection.execute(_POSITION, key).mappings().one_or_none()
    held = Decimal(0) if current is None else current["qty"]
    if side is OrderSide.BUY:
        avg = average_entry_price(
            held, Decimal(0) if current is None else current["avg_entry_price"], qty, price
        )
        if current is None:
            connection.execute(
                _INSERT_POSITION,
                {
                    "account_number": account_number,
                    "symbol": symbol,
                    "qty": qty,
                    "avg_entry_price": avg,
                    "updated_at": now,
                },
            )
        else:
            connection.execute(
                _UPDATE_POSITION,
                {**key, "qty": held + qty, "avg_entry_price": avg, "updated_at": now},
            )
        return held + qty
    remaining = held - qty
    if remaining < 0:  # the caller checked sellable_qty; this guards the no-shorting rule
        raise AssertionError(f"sell of {qty} {symbol} exceeds the position of {held}")
    if remaining == 0:
        connection.execute(_DELETE_POSITION, key)
    else:
        connection.execute(_UPDATE_POSITION, {**key, "qty": remaining, "updated_at": now})
    return remaining
