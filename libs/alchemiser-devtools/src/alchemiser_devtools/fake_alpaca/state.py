"""The fake's in-memory account: cash, positions, prices and the order book.

Every method returns ``(status, body)`` like the real API would, so the HTTP layer only
routes. All state is guarded by one lock (the server is threaded). Business rules follow
Alpaca where they matter to the adapter: a reused ``client_order_id`` is answered 422
``client_order_id must be unique`` (canceled and filled ids stay reserved), an unknown one
404, a buy beyond the cash 403 ``insufficient buying power``, a sell beyond the position 403.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from alchemiser_devtools.fake_alpaca import shapes
from alchemiser_devtools.fake_alpaca.shapes import FakeOrder, FakePosition
from alchemiser_devtools.fake_alpaca.validation import order_error

__all__ = ["DUPLICATE_MESSAGE", "FakeAlpacaState", "FillMode", "Reply"]

Reply = tuple[int, Any]
# Observed reply to a reused client_order_id (HTTP 422, code 40010001).
DUPLICATE_MESSAGE = "client_order_id must be unique"
_QTY_STEP = Decimal("0.000000001")
_INVALID = 40010001
_NOT_FOUND = 40410000
_NOT_CANCELABLE = 42210000


class FillMode(StrEnum):
    """What happens to a marketable order when it arrives."""

    IMMEDIATE = "immediate"  # filled at once at the symbol's price
    NEW = "new"  # stays ``new`` until the test calls ``fill_order``
    PARTIAL = "partial"  # ``partial_fill_ratio`` of it fills at once


def _invalid(message: str) -> Reply:
    return 422, shapes.error_json(_INVALID, message)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"invalid number {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"invalid number {value!r}")
    return result


class FakeAlpacaState:
    """Account, positions, prices and orders of the fake; tests change them directly."""

    def __init__(
        self,
        *,
        cash: Decimal = Decimal(100_000),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.account_id = str(uuid.uuid4())
        self.cash = cash
        self.trading_blocked = False
        self.market_open = True
        self.fill_mode = FillMode.IMMEDIATE
        self.partial_fill_ratio = Decimal("0.5")
        # Alpaca always refuses a reused id; switch off to prove the client never re-sends.
        self.enforce_unique_client_order_id = True
        self.positions: dict[str, FakePosition] = {}
        self.prices: dict[str, Decimal] = {}
        self.quotes: dict[str, tuple[Decimal, Decimal]] = {}
        self.non_fractionable: set[str] = set()
        self.orders: dict[str, FakeOrder] = {}
        self.created_per_client_id: Counter[str] = Counter()
        self._by_client_id: dict[str, str] = {}
        self._now = now or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------ test set-up

    def now(self) -> datetime:
        """The fake's current time."""
        return self._now()

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set the last trade price (and so the fill price) of ``symbol``."""
        with self.lock:
            self.prices[symbol] = price

    def set_position(self, symbol: str, qty: Decimal, avg_entry_price: Decimal) -> None:
        """Hold ``qty`` shares of ``symbol`` (0 removes the position)."""
        with self.lock:
            if qty == 0:
                self.positions.pop(symbol, None)
            else:
                self.positions[symbol] = FakePosition(symbol, qty, avg_entry_price)

    def orders_for(self, client_order_id: str) -> list[FakeOrder]:
        """Every order created under ``client_order_id`` (normally at most one)."""
        with self.lock:
            return [o for o in self.orders.values() if o.client_order_id == client_order_id]

    # ----------------------------------------------------------------- reads

    def account(self) -> Reply:
        """``GET /v2/account``."""
        with self.lock:
            long_value = sum(
                (p.qty * self.prices.get(p.symbol, p.avg_entry_price))
                for p in self.positions.values()
            )
            body = shapes.account_json(
                self.account_id,
                self.cash,
                Decimal(long_value),
                trading_blocked=self.trading_blocked,
            )
            return 200, body

    def list_positions(self) -> Reply:
        """``GET /v2/positions``."""
        with self.lock:
            return 200, [self._position_json(p) for p in self.positions.values()]

    def get_position(self, symbol: str) -> Reply:
        """``GET /v2/positions/{symbol}``."""
        with self.lock:
            position = self.positions.get(symbol)
            if position is None:
                return 404, shapes.error_json(_NOT_FOUND, "position does not exist")
            return 200, self._position_json(position)

    def _position_json(self, position: FakePosition) -> dict[str, Any]:
        price = self.prices.get(position.symbol, position.avg_entry_price)
        return shapes.position_json(position, price)

    def clock(self) -> Reply:
        """``GET /v2/clock`` (next open tomorrow 13:30 UTC, next close today 20:00 UTC)."""
        now = self.now()
        today_close = now.replace(hour=20, minute=0, second=0, microsecond=0)
        next_open = (now + timedelta(days=1)).replace(hour=13, minute=30, second=0, microsecond=0)
        next_close = today_close if today_close > now else today_close + timedelta(days=1)
        return 200, shapes.clock_json(now, self.market_open, next_open, next_close)

    def asset(self, symbol: str) -> Reply:
        """``GET /v2/assets/{symbol}``: every symbol with a price is a tradable asset."""
        with self.lock:
            if symbol not in self.prices:
                return 404, shapes.error_json(_NOT_FOUND, "asset not found")
            return 200, shapes.asset_json(
                symbol, fractionable=symbol not in self.non_fractionable, tradable=True
            )

    def latest_trades(self, symbols: list[str]) -> Reply:
        """``GET /v2/stocks/trades/latest?symbols=``."""
        with self.lock:
            now = self.now()
            found = {s: shapes.trade_json(self.prices[s], now) for s in symbols if s in self.prices}
            return 200, {"trades": found}

    def latest_quotes(self, symbols: list[str]) -> Reply:
        """``GET /v2/stocks/quotes/latest?symbols=``: set quotes, else price ± 1 cent."""
        with self.lock:
            now = self.now()
            found: dict[str, Any] = {}
            for symbol in symbols:
                if symbol in self.quotes:
                    bid, ask = self.quotes[symbol]
                elif symbol in self.prices:
                    price = self.prices[symbol]
                    bid, ask = price - Decimal("0.01"), price + Decimal("0.01")
                else:
                    continue
                found[symbol] = shapes.quote_json(bid, ask, now)
            return 200, {"quotes": found}

    def get_order(self, order_id: str) -> Reply:
        """``GET /v2/orders/{id}``."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return 404, shapes.error_json(_NOT_FOUND, "order not found")
            return 200, order.to_json()

    def get_order_by_client_id(self, client_order_id: str) -> Reply:
        """``GET /v2/orders:by_client_order_id`` (404 when unknown, as observed)."""
        with self.lock:
            order_id = self._by_client_id.get(client_order_id)
            if order_id is None:
                return 404, shapes.error_json(_NOT_FOUND, "order not found")
            return 200, self.orders[order_id].to_json()

    def list_orders(self, status: str) -> Reply:
        """``GET /v2/orders?status=open|closed|all`` (newest first)."""
        with self.lock:
            orders = sorted(self.orders.values(), key=lambda o: o.created_at, reverse=True)
            if status == "open":
                orders = [o for o in orders if o.is_open]
            elif status == "closed":
                orders = [o for o in orders if not o.is_open]
            return 200, [o.to_json() for o in orders]

    # ---------------------------------------------------------------- writes

    def create_order(self, body: dict[str, Any]) -> Reply:
        """``POST /v2/orders``: validate, book and (per ``fill_mode``) fill the order."""
        with self.lock:
            try:
                qty, notional, limit_price = (
                    _decimal(body.get(k)) for k in ("qty", "notional", "limit_price")
                )
            except ValueError as err:
                return _invalid(str(err))
            cid = str(body.get("client_order_id") or uuid.uuid4())
            if len(cid) > 128:
                return _invalid("client_order_id must be no more than 128 characters")
            if self.enforce_unique_client_order_id and cid in self._by_client_id:
                return _invalid(DUPLICATE_MESSAGE)
            error = order_error(self, body, qty, notional, limit_price)
            if error is not None:
                return error
            order = FakeOrder(
                client_order_id=cid,
                symbol=str(body["symbol"]),
                side=str(body["side"]),
                order_type=str(body["type"]),
                time_in_force=str(body["time_in_force"]),
                qty=qty,
                notional=notional,
                limit_price=limit_price,
                created_at=self.now(),
                status="accepted" if not self.market_open else "new",
            )
            self._book(order)
            self._auto_fill(order)
            return 200, order.to_json()

    def _book(self, order: FakeOrder) -> None:
        self.orders[order.id] = order
        self._by_client_id[order.client_order_id] = order.id
        self.created_per_client_id[order.client_order_id] += 1

    def _auto_fill(self, order: FakeOrder) -> None:
        if not self.market_open or self.fill_mode is FillMode.NEW:
            return
        price = self.prices[order.symbol]
        if order.order_type == "limit":
            assert order.limit_price is not None
            marketable = (
                order.limit_price >= price if order.side == "buy" else order.limit_price <= price
            )
            if not marketable:
                return
        total = self._order_qty(order, price)
        if self.fill_mode is FillMode.PARTIAL:
            total = (total * self.partial_fill_ratio).quantize(_QTY_STEP, ROUND_DOWN)
        self._fill(order, total, price)

    @staticmethod
    def _order_qty(order: FakeOrder, price: Decimal) -> Decimal:
        if order.qty is not None:
            return order.qty
        assert order.notional is not None
        return (order.notional / price).quantize(_QTY_STEP, ROUND_DOWN)

    def fill_order(
        self, order_id: str, qty: Decimal | None = None, price: Decimal | None = None
    ) -> FakeOrder:
        """Fill ``qty`` more of an open order (default: the rest) at ``price`` (default: last)."""
        with self.lock:
            order = self.orders[order_id]
            if not order.is_open:
                raise ValueError(f"order {order_id} is {order.status}")
            fill_price = price if price is not None else self.prices[order.symbol]
            remaining = self._order_qty(order, fill_price) - order.filled_qty
            self._fill(order, remaining if qty is None else min(qty, remaining), fill_price)
            return order

    def _fill(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        if qty <= 0:
            return
        now = self.now()
        previous = order.filled_qty * (order.filled_avg_price or Decimal(0))
        order.filled_qty += qty
        order.filled_avg_price = ((previous + qty * price) / order.filled_qty).quantize(
            Decimal("0.0001")
        )
        full = order.filled_qty >= self._order_qty(order, price)
        order.status = "filled" if full else "partially_filled"
        order.updated_at = now
        order.filled_at = now if full else None
        position = self.positions.get(order.symbol)
        if order.side == "buy":
            self.cash -= qty * price
            if position is None:
                self.positions[order.symbol] = FakePosition(order.symbol, qty, price)
            else:
                cost = position.qty * position.avg_entry_price + qty * price
                position.qty += qty
                position.avg_entry_price = (cost / position.qty).quantize(Decimal("0.0001"))
        else:
            self.cash += qty * price
            assert position is not None
            position.qty -= qty
            if position.qty <= 0:
                del self.positions[order.symbol]

    def cancel_order(self, order_id: str) -> Reply:
        """``DELETE /v2/orders/{id}``: 204, or 422 when the order is no longer open."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return 404, shapes.error_json(_NOT_FOUND, "order not found")
            if not order.is_open:
                message = f'order is already in "{order.status}" state'
                return 422, shapes.error_json(_NOT_CANCELABLE, message)
            order.status = "canceled"
            order.canceled_at = order.updated_at = self.now()
            return 204, None

    def replace_order(self, order_id: str, body: dict[str, Any]) -> Reply:
        """``PATCH /v2/orders/{id}``: the old order becomes ``replaced``; returns the new one."""
        with self.lock:
            old = self.orders.get(order_id)
            if old is None:
                return 404, shapes.error_json(_NOT_FOUND, "order not found")
            if not old.is_open or old.filled_qty > 0:
                return 422, shapes.error_json(_NOT_CANCELABLE, "order is not replaceable")
            try:
                qty, limit_price = _decimal(body.get("qty")), _decimal(body.get("limit_price"))
            except ValueError as err:
                return _invalid(str(err))
            now = self.now()
            new = FakeOrder(
                client_order_id=str(body.get("client_order_id") or uuid.uuid4()),
                symbol=old.symbol,
                side=old.side,
                order_type=old.order_type,
                time_in_force=str(body.get("time_in_force") or old.time_in_force),
                qty=qty if qty is not None else old.qty,
                notional=old.notional,
                limit_price=limit_price if limit_price is not None else old.limit_price,
                created_at=now,
                replaces=old.id,
            )
            old.status, old.replaced_at, old.replaced_by, old.updated_at = (
                "replaced",
                now,
                new.id,
                now,
            )
            self._book(new)
            self._auto_fill(new)
            return 200, new.to_json()

    def close_position(self, symbol: str) -> Reply:
        """``DELETE /v2/positions/{symbol}``: a market sell of the whole position."""
        with self.lock:
            position = self.positions.get(symbol)
            if position is None:
                return 404, shapes.error_json(_NOT_FOUND, "position does not exist")
            body = {
                "symbol": symbol,
                "side": "sell",
                "type": "market",
                "time_in_force": "day",
                "qty": str(position.qty),
            }
            return self.create_order(body)
