"""Placing and filling orders inside an open, account-locked transaction.

The order row is inserted *first*, so a reused ``client_order_id`` is caught by the unique
constraint before anything else is looked at (a retried submit is refused as a duplicate even
if the account changed since); then the request is checked against the rules and the balances
read under the account lock, and a fill (if the session crosses the order) moves cash and the
position (and charges the fill's commission, see :class:`~alchemiser_exchange.rules.Costs`).
A refusal raises an :class:`~alchemiser_exchange.errors.ExchangeError` and the
caller's transaction rolls back, inserted row included: Alpaca creates no order it refuses.

Every change is returned as :class:`TradeUpdate` values for the trade-updates stream; the
caller publishes them after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alchemiser_broker.models import OrderSide, OrderStatus, OrderType
from alchemiser_exchange import rules, store
from alchemiser_exchange.errors import (
    AccountBlockedError,
    InsufficientFundsError,
    InvalidOrderError,
    NotFoundError,
)
from alchemiser_exchange.schema import AccountRecord, OrderRecord, order_table
from alchemiser_exchange.settings import TradingRules

__all__ = [
    "NewOrder",
    "TradeUpdate",
    "fill",
    "move_to_session",
    "order_record",
    "place_order",
    "set_status",
]


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order to place: a submitted request or the replacement of an open order."""

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    """One event of Alpaca's trade-updates stream: what happened to which order."""

    event: str
    order: OrderRecord
    at: datetime
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None
    fee: Decimal | None = None
    """The commission of this fill (``fill``/``partial_fill`` only)."""


def _initial_row(
    order: NewOrder,
    account: AccountRecord,
    *,
    session: date,
    reference: Decimal,
    now: datetime,
    sequence: int,
) -> dict[str, Any]:
    return {
        "broker_order_id": order.broker_order_id,
        "account_number": account.account_number,
        "client_order_id": order.client_order_id,
        "sequence": sequence,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force,
        "status": OrderStatus.PENDING_NEW.value,
        "qty": order.qty,
        "notional": order.notional,
        "target_qty": order.qty if order.qty is not None else Decimal(0),
        "limit_price": order.limit_price,
        "reference_price": reference,
        "filled_qty": Decimal(0),
        "filled_avg_price": None,
        "session_date": session,
        "submitted_at": now,
        "filled_at": None,
        "canceled_at": None,
        "expired_at": None,
        "updated_at": now,
        "replaces": order.replaces,
        "replaced_by": None,
        "fees": Decimal(0),
    }


def _check_balances(
    order: NewOrder,
    target: Decimal,
    price: Decimal,
    buying_power: Decimal,
    sellable: Decimal,
    *,
    costs: rules.Costs,
) -> None:
    """``price``: the slipped close. A buy must afford the whole quantity and its commission."""
    if order.side is OrderSide.BUY:
        at = order.limit_price or price
        cost = rules.cents(target * at) + costs.commission(target, at)
        if cost > buying_power:
            raise InsufficientFundsError("insufficient buying power")
    elif target > sellable:
        raise InsufficientFundsError(
            f"insufficient qty available for order (requested: {target}, "
            f"available: {max(sellable, Decimal(0))})"
        )


# Statements built once, with placeholders (see :mod:`.store`). SET: the columns named by the
# other parameters' keys.
_UPDATE_ORDER = sa.update(order_table).where(
    order_table.c.broker_order_id == sa.bindparam("order_id")
)


def place_order(
    connection: Connection,
    order: NewOrder,
    *,
    account: AccountRecord,
    session: date,
    bar: rules.SessionBar | None,
    trading: TradingRules,
    hold: bool,
    now: datetime,
) -> list[TradeUpdate]:
    """Insert ``order``, check it, fill it if the session crosses it (unless ``hold``).

    ``account`` was read under the lock; ``bar`` is the symbol's bar in ``session`` (``None``:
    unknown symbol). Raises ``DuplicateOrderError`` or another ``ExchangeError``.
    """
    number = account.account_number
    costs = trading.costs
    # Balances before this order exists; the account lock keeps them current.
    working = store.open_orders(connection, number)
    buying_power = account.cash - store.cash_held(working, costs)
    sellable = store.sellable_qty(connection, number, order.symbol, working)
    # the price a market order is expected to fill at: the close, slipped against it
    expected = costs.slipped(order.side, bar.close) if bar is not None else Decimal(0)
    reference = order.limit_price or expected
    row = _initial_row(
        order,
        account,
        session=session,
        reference=reference,
        now=now,
        sequence=store.next_sequence(connection, number),
    )
    store.insert_order(connection, row)
    if bar is None:
        raise InvalidOrderError(f'asset "{order.symbol}" not found')
    if account.trading_blocked:
        raise AccountBlockedError("account is blocked from trading")
    if order.time_in_force not in ("day", "gtc"):
        raise InvalidOrderError(f"time_in_force {order.time_in_force} is not supported")
    if order.limit_price is not None:
        rules.check_limit_price(order.limit_price)
    fractionable = order.symbol not in trading.non_fractionable
    target = rules.target_quantity(
        symbol=order.symbol,
        order_type=order.order_type,
        qty=order.qty,
        notional=order.notional,
        price=expected,
        fractionable=fractionable,
    )
    if target != target.to_integral_value() and order.time_in_force != "day":
        raise InvalidOrderError("fractional orders must be day orders")
    _check_balances(order, target, expected, buying_power, sellable, costs=costs)
    accepted = {"status": OrderStatus.NEW.value, "target_qty": target}
    connection.execute(_UPDATE_ORDER, {**accepted, "order_id": order.broker_order_id})
    # the account traded in this session
    store.note_session(connection, number, session, account.first_session_date)
    record = OrderRecord.from_row({**row, **accepted})
    updates = [TradeUpdate("new", record, now)]
    if not hold:
        updates.extend(fill(connection, record, bar=bar, trading=trading, session=session, now=now))
    return updates


def fill(
    connection: Connection,
    record: OrderRecord,
    *,
    bar: rules.SessionBar,
    trading: TradingRules,
    session: date,
    now: datetime,
    price: Decimal | None = None,
    qty: Decimal | None = None,
) -> list[TradeUpdate]:
    """Fill what ``bar``'s ``session`` crosses of an open order (or ``qty`` at ``price``).

    With ``price`` the order fills there regardless of the bar and unslipped (an operator's
    manual fill); returns the ``fill``/``partial_fill`` update, or nothing when the order does
    not trade. Every fill pays its commission (``trading.costs``), added to the order's fees,
    and is recorded in the account's ledger as of ``session`` (the order's own session may be
    an earlier one: a ``gtc`` order fills when the clock reaches a session crossing it).
    """
    costs = trading.costs
    fractionable = record.symbol not in trading.non_fractionable
    if price is not None:
        remaining = record.target_qty - record.filled_qty
        amount = remaining if qty is None else min(qty, remaining)
        done = record.filled_qty + amount == record.target_qty
        execution = rules.Execution(
            OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, amount, price
        )
    else:
        execution = rules.execute(
            side=record.side,
            order_type=record.order_type,
            limit_price=record.limit_price,
            qty=record.target_qty,
            already_filled=record.filled_qty,
            bar=bar,
            partial_fill_ratio=trading.partial_fill_ratio,
            fractionable=fractionable,
            costs=costs,
        )
    if execution.fill_price is None or execution.filled_qty <= 0:
        return []
    fee = costs.commission(execution.filled_qty, execution.fill_price)
    position_qty = store.apply_fill(
        connection,
        account_number=record.account_number,
        broker_order_id=record.broker_order_id,
        symbol=record.symbol,
        side=record.side,
        qty=execution.filled_qty,
        price=execution.fill_price,
        session=session,
        now=now,
        fee=fee,
    )
    fees = record.fees + fee
    filled_qty = record.filled_qty + execution.filled_qty
    average = (
        (record.filled_qty * (record.filled_avg_price or Decimal(0)))
        + execution.filled_qty * execution.fill_price
    ) / filled_qty
    average_price = average.quantize(rules.PRICE_QUANTUM)
    changes = {
        "status": execution.status.value,
        "filled_qty": filled_qty,
        "filled_avg_price": average_price,
        "filled_at": now,
        "updated_at": now,
        "fees": fees,
    }
    connection.execute(_UPDATE_ORDER, {**changes, "order_id": record.broker_order_id})
    updated = replace(
        record,
        status=execution.status,
        filled_qty=filled_qty,
        filled_avg_price=average_price,
        filled_at=now,
        updated_at=now,
        fees=fees,
    )
    event = "fill" if execution.status is OrderStatus.FILLED else "partial_fill"
    return [
        TradeUpdate(
            event,
            updated,
            now,
            price=execution.fill_price,
            qty=execution.filled_qty,
            position_qty=position_qty,
            fee=fee,
        )
    ]


def set_status(
    connection: Connection,
    record: OrderRecord,
    status: OrderStatus,
    *,
    now: datetime,
    replaced_by: str | None = None,
) -> TradeUpdate:
    """End an open order as ``canceled``, ``expired`` or ``replaced``."""
    changes: dict[str, Any] = {"status": status.value, "updated_at": now}
    if status is OrderStatus.CANCELED:
        changes["canceled_at"] = now
    elif status is OrderStatus.EXPIRED:
        changes["expired_at"] = now
    elif status is OrderStatus.REPLACED:
        changes["replaced_by"] = replaced_by
    connection.execute(_UPDATE_ORDER, {**changes, "order_id": record.broker_order_id})
    fields = {name: value for name, value in changes.items() if name != "status"}
    return TradeUpdate(status.value, replace(record, status=status, **fields), now)


def move_to_session(connection: Connection, record: OrderRecord, session: date) -> OrderRecord:
    """A day order queued while the market was closed becomes an order of ``session``."""
    connection.execute(_UPDATE_ORDER, {"session_date": session, "order_id": record.broker_order_id})
    return replace(record, session_date=session)


_ORDER = sa.select(order_table).where(
    order_table.c.account_number == sa.bindparam("account"),
    order_table.c.broker_order_id == sa.bindparam("order_id"),
)


def order_record(connection: Connection, account_number: str, broker_order_id: str) -> OrderRecord:
    """The account's order ``broker_order_id``; ``NotFoundError`` when there is none."""
    params = {"account": account_number, "order_id": broker_order_id}
    row = connection.execute(_ORDER, params).mappings().one_or_none()
    if row is None:
        raise NotFoundError("order not found")
    return OrderRecord.from_row(row)
