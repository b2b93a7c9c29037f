"""The simulated broker's trading rules as pure functions: quantities, prices, fills, clock.

Quantisation (all ``Decimal``, never float):

* **Quantities** carry at most 9 decimal places (Alpaca's fractional precision); a notional
  order's quantity is ``notional / price`` rounded *down* to that, a partial fill rounds down
  too (to whole shares for a non-fractionable symbol).
* **Fill prices** are the dataset's close rounded half-even to 4 places (sub-penny prices
  exist below $1; above it closes have 2 places anyway).
* **Money** (cash, an order's cost or proceeds, market value, equity, buying power) is rounded
  half-even to the cent *per fill* (each fill moves cash by ``cents(qty * price)``) and per
  position for market value. No fees are charged.
* **Average entry price** is the quantity-weighted mean of the buys, rounded half-even to 6
  places; sells leave it unchanged.
* **Limit prices** follow Alpaca's increments: at most 2 decimal places at or above $1, 4
  below; anything finer is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from alchemiser_broker.exceptions import OrderRejectedError
from alchemiser_broker.models import (
    MarketClock,
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
)

__all__ = [
    "AVG_PRICE_QUANTUM",
    "MIN_NOTIONAL",
    "MONEY_QUANTUM",
    "OPEN_STATUSES",
    "PRICE_QUANTUM",
    "QTY_QUANTUM",
    "Execution",
    "average_entry_price",
    "cents",
    "check_limit_price",
    "check_quantity",
    "execute",
    "fill_price",
    "is_marketable",
    "market_clock",
    "quote_for",
    "target_quantity",
]

QTY_QUANTUM = Decimal("0.000000001")
PRICE_QUANTUM = Decimal("0.0001")
MONEY_QUANTUM = Decimal("0.01")
AVG_PRICE_QUANTUM = Decimal("0.000001")
MIN_NOTIONAL = Decimal(1)  # Alpaca's smallest notional order, in dollars
_WHOLE = Decimal(1)
_BPS = Decimal(10000)

OPEN_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.ACCEPTED,
        OrderStatus.PENDING_NEW,
    }
)
"""Statuses of a working order (counted against buying power and sellable quantity)."""

_MARKET_TZ = ZoneInfo("America/New_York")
_MARKET_OPEN = time(9, 30)
_MARKET_CLOSE = time(16, 0)
_SATURDAY = 5


def cents(amount: Decimal) -> Decimal:
    """``amount`` rounded half-even to the cent."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def fill_price(close: Decimal) -> Decimal:
    """The price an order fills at, given the dataset's close."""
    return close.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_quantity(qty: Decimal, *, symbol: str, order_type: OrderType, fractionable: bool) -> None:
    """Refuse a quantity Alpaca would refuse (precision, fractional rules)."""
    if qty <= 0:
        raise OrderRejectedError(f"qty must be > 0, got {qty}")
    if _decimal_places(qty) > 9:
        raise OrderRejectedError(f"qty {qty} is limited to 9 decimal places")
    if not _is_whole(qty):
        if not fractionable:
            raise OrderRejectedError(f"asset {symbol} is not fractionable")
        if order_type is not OrderType.MARKET:
            raise OrderRejectedError("fractional orders must be market orders with day tif")


def check_limit_price(limit_price: Decimal) -> None:
    """Refuse a sub-penny limit price at or above $1 (sub-$1 prices may use 4 places)."""
    places = 2 if limit_price >= 1 else 4
    if _decimal_places(limit_price) > places:
        raise OrderRejectedError(
            f"invalid limit_price {limit_price}. sub-penny increment does not fulfill "
            "minimum pricing criteria"
        )


def target_quantity(
    *,
    symbol: str,
    order_type: OrderType,
    qty: Decimal | None,
    notional: Decimal | None,
    price: Decimal,
    fractionable: bool,
) -> Decimal:
    """The quantity an order trades: ``qty`` itself, or ``notional / price`` rounded down."""
    if qty is not None:
        check_quantity(qty, symbol=symbol, order_type=order_type, fractionable=fractionable)
        return qty
    if notional is None:
        raise OrderRejectedError("qty or notional is required")
    if order_type is not OrderType.MARKET:
        raise OrderRejectedError("notional orders must be market orders with day tif")
    if not fractionable:
        raise OrderRejectedError(f"asset {symbol} is not fractionable")
    if _decimal_places(notional) > 2:
        raise OrderRejectedError(f"notional {notional} is limited to 2 decimal places")
    if notional < MIN_NOTIONAL:
        raise OrderRejectedError(f"notional must be >= {MIN_NOTIONAL}, got {notional}")
    result = (notional / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    if result <= 0:
        raise OrderRejectedError(f"notional {notional} buys no {symbol} at {price}")
    return result


def is_marketable(
    side: OrderSide, order_type: OrderType, limit_price: Decimal | None, price: Decimal
) -> bool:
    """Whether the order would trade at ``price`` now (market orders always do)."""
    if order_type is OrderType.MARKET or limit_price is None:
        return True
    return limit_price >= price if side is OrderSide.BUY else limit_price <= price


@dataclass(frozen=True, slots=True)
class Execution:
    """What happens to an order when it meets the market: its status and its fill."""

    status: OrderStatus
    filled_qty: Decimal
    fill_price: Decimal | None


def execute(
    *,
    side: OrderSide,
    order_type: OrderType,
    limit_price: Decimal | None,
    qty: Decimal,
    price: Decimal,
    partial_fill_ratio: Decimal | None,
    fractionable: bool,
) -> Execution:
    """Fill ``qty`` at ``price`` when marketable: wholly, or by ``partial_fill_ratio``.

    A partial quantity is rounded down (whole shares when not fractionable); when that leaves
    nothing the order stays ``new``.
    """
    if not is_marketable(side, order_type, limit_price, price):
        return Execution(OrderStatus.NEW, Decimal(0), None)
    filled = qty
    if partial_fill_ratio is not None and partial_fill_ratio < 1:
        quantum = QTY_QUANTUM if fractionable else _WHOLE
        filled = (qty * partial_fill_ratio).quantize(quantum, rounding=ROUND_DOWN)
    if filled <= 0:
        return Execution(OrderStatus.NEW, Decimal(0), None)
    status = OrderStatus.FILLED if filled == qty else OrderStatus.PARTIALLY_FILLED
    return Execution(status, filled, price)


def average_entry_price(
    held_qty: Decimal, held_avg: Decimal, bought_qty: Decimal, price: Decimal
) -> Decimal:
    """The average entry price after buying ``bought_qty`` at ``price``."""
    total = held_qty + bought_qty
    mean = (held_qty * held_avg + bought_qty * price) / total
    return mean.quantize(AVG_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def quote_for(
    symbol: str, price: Decimal, *, spread_bps: Decimal, size: Decimal, timestamp: datetime
) -> Quote:
    """A two-sided quote ``spread_bps`` wide around ``price`` (bid down, ask up to the tick)."""
    tick = MONEY_QUANTUM if price >= 1 else PRICE_QUANTUM
    half = price * spread_bps / _BPS / 2
    bid = (price - half).quantize(tick, rounding=ROUND_FLOOR)
    ask = (price + half).quantize(tick, rounding=ROUND_CEILING)
    return Quote(symbol=symbol, bid=bid, ask=ask, bid_size=size, ask_size=size, timestamp=timestamp)


def _next_session_time(local_now: datetime, at: time) -> datetime:
    """The first weekday ``at`` (New York time) strictly after ``local_now`` (no holidays)."""
    day = local_now.date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=_MARKET_TZ)
        if candidate > local_now and candidate.weekday() < _SATURDAY:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


def market_clock(now: datetime, *, is_open: bool) -> MarketClock:
    """A clock reporting ``is_open``; next open/close on a weekday 9:30-16:00 New York."""
    local_now = now.astimezone(_MARKET_TZ)
    return MarketClock(
        timestamp=now,
        is_open=is_open,
        next_open=_next_session_time(local_now, _MARKET_OPEN),
        next_close=_next_session_time(local_now, _MARKET_CLOSE),
    )
