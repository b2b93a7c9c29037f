"""Placing one simulated order inside an open transaction: insert, check, execute.

The order row is inserted *first*, so a reused ``client_order_id`` is caught by the unique
constraint before anything else is looked at (a retried submit is adopted even if the account
changed since); then the request is validated against the rules and the balances read under
the account lock, and the fill (if any) moves cash and the position. Any refusal raises
:class:`OrderRejectedError` and the caller's transaction rolls back, inserted row included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alchemiser_broker import simulated_rules as rules
from alchemiser_broker import simulated_store as store
from alchemiser_broker.exceptions import OrderRejectedError
from alchemiser_broker.models import (
    BrokerOrder,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from alchemiser_broker.simulated_schema import order_from_row, order_table
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.observability.logging import get_logger

__all__ = ["NewOrder", "place_order"]

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order to place: a submitted request or the replacement of an open order."""

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    replaces: str | None = None


def _initial_row(order: NewOrder, account_id: str, price: Decimal | None, now: datetime) -> Any:
    return {
        "broker_order_id": order.broker_order_id,
        "account_id": account_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": TimeInForce.DAY.value,
        "status": OrderStatus.PENDING_NEW.value,
        "qty": order.qty,
        "notional": order.notional,
        "target_qty": order.qty if order.qty is not None else Decimal(0),
        "limit_price": order.limit_price,
        "reference_price": order.limit_price or price or Decimal(0),
        "filled_qty": Decimal(0),
        "filled_avg_price": None,
        "submitted_at": now,
        "filled_at": None,
        "updated_at": now,
        "replaces": order.replaces,
        "replaced_by": None,
    }


def _check_balances(
    order: NewOrder, target: Decimal, price: Decimal, buying_power: Decimal, sellable: Decimal
) -> None:
    if order.side is OrderSide.BUY:
        cost = rules.cents(target * (order.limit_price or price))
        if cost > buying_power:
            raise OrderRejectedError(
                f"insufficient buying power (required: {cost}, available: {buying_power})"
            )
    elif target > sellable:
        raise OrderRejectedError(
            f"insufficient qty available for order (requested: {target}, "
            f"available: {max(sellable, Decimal(0))})"
        )


def place_order(
    connection: Connection,
    order: NewOrder,
    *,
    settings: SimulatedBrokerSettings,
    price: Decimal | None,
    cash: Decimal,
    now: datetime,
) -> BrokerOrder:
    """Insert ``order``, validate it, fill it if marketable; returns it as stored.

    ``price`` is the symbol's fill price on the simulated date (``None``: unknown symbol) and
    ``cash`` the account's cash read under the lock. Raises ``DuplicateClientOrderIdError``
    (reused id) or ``OrderRejectedError`` (refused); the caller rolls back on either.
    """
    account_id = settings.account_id
    # Balances before this order exists; the account lock keeps them current.
    buying_power = cash - store.reserved_cash(connection, account_id)
    sellable = store.sellable_qty(connection, account_id, order.symbol)
    row = _initial_row(order, account_id, price, now)
    store.insert_order(connection, row)
    if price is None:
        raise OrderRejectedError(f"asset not found: {order.symbol}")
    if order.limit_price is not None:
        rules.check_limit_price(order.limit_price)
    fractionable = order.symbol not in settings.non_fractionable
    target = rules.target_quantity(
        symbol=order.symbol,
        order_type=order.order_type,
        qty=order.qty,
        notional=order.notional,
        price=price,
        fractionable=fractionable,
    )
    _check_balances(order, target, price, buying_power, sellable)
    execution = rules.execute(
        side=order.side,
        order_type=order.order_type,
        limit_price=order.limit_price,
        qty=target,
        price=price,
        partial_fill_ratio=settings.partial_fill_ratio,
        fractionable=fractionable,
    )
    if execution.fill_price is not None:
        store.apply_fill(
            connection,
            account_id=account_id,
            cash=cash,
            symbol=order.symbol,
            side=order.side,
            qty=execution.filled_qty,
            price=execution.fill_price,
            now=now,
        )
    changes = {
        "status": execution.status.value,
        "target_qty": target,
        "reference_price": order.limit_price or execution.fill_price or price,
        "filled_qty": execution.filled_qty,
        "filled_avg_price": execution.fill_price,
        "filled_at": now if execution.fill_price is not None else None,
    }
    connection.execute(
        sa.update(order_table)
        .where(order_table.c.broker_order_id == order.broker_order_id)
        .values(changes)
    )
    _log.info(
        "simulated order placed",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side.value,
        status=execution.status.value,
        filled_qty=str(execution.filled_qty),
        fill_price=str(execution.fill_price),
    )
    return order_from_row({**row, **changes})
