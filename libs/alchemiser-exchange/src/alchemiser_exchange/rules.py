"""The exchange's trading rules as pure functions: quantities, prices, fills, costs, clock.

**Fills.** An account trades in its *session* (one trading day of the dataset), against that
day's bar of the symbol:

* a market order fills at once at the session's close, slipped (see *Costs*);
* a limit order fills at once when the session's range crosses it: a buy limit at or above the
  low fills at the lower of the limit and the slipped close, a sell limit at or below the high
  at the higher of the two (slippage never takes a fill beyond its limit); otherwise it rests
  (``new``) until canceled, replaced, or the account's clock moves to another session (a
  ``day`` order then expires; a ``gtc`` order is checked against the new session's bar);
* with ``partial_fill_ratio`` only that share fills and the order stays ``partially_filled``.

**Costs** (:class:`Costs`, from the ``TradingRules``; all zero by default: frictionless):

* **Slippage**: a fill moves against the order by ``slippage_bps`` basis points of the close:
  a buy at ``close * (1 + bps / 10000)``, a sell at ``close * (1 - bps / 10000)``, rounded as
  a fill price (below). An operator's manual fill at an explicit price is not slipped.
* **Commission** of one fill: ``max(commission_min, qty * commission_per_share + qty * price
  * commission_bps / 10000)`` rounded half-even to the cent, when ``commission_per_share`` or
  ``commission_bps`` is non-zero; else nothing (``commission_min`` alone charges nothing). It
  is debited from cash on each fill and summed on the order's ``fees``.

Quantisation (all ``Decimal``, never float):

* **Quantities** carry at most 9 decimal places (Alpaca's fractional precision); a notional
  order's quantity is ``notional / price`` (the slipped close) rounded *down* to that, a
  partial fill rounds down too (to whole shares for a non-fractionable symbol).
* **Fill prices** are the dataset's close, slipped, rounded half-even to 4 places (sub-penny
  prices exist below $1; above it closes have 2 places anyway).
* **Money** (cash, an order's cost or proceeds, a commission, market value, equity, buying
  power) is rounded half-even to the cent *per fill* (each fill moves cash by
  ``cents(qty * price)`` and by its commission: a buy ``cash -= cost + commission``, a sell
  ``cash += proceeds - commission``) and per position for market value.
* **Average entry price** is the quantity-weighted mean of the buys' fill prices (commissions
  excluded), rounded half-even to 6 places; sells leave it unchanged.
* **Limit prices** follow Alpaca's increments: at most 2 decimal places at or above $1, 4
  below; anything finer is rejected.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from alchemiser_broker.models import (
    MarketClock,
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
)
from alchemiser_exchange.errors import InvalidOrderError

__all__ = [
    "AVG_PRICE_QUANTUM",
    "FRICTIONLESS",
    "MIN_NOTIONAL",
    "MONEY_QUANTUM",
    "OPEN_STATUSES",
    "PRICE_QUANTUM",
    "QTY_QUANTUM",
    "Costs",
    "Execution",
    "SessionBar",
    "average_entry_price",
    "cents",
    "check_limit_price",
    "check_quantity",
    "crossing_price",
    "execute",
    "fill_price",
    "next_trading_day",
    "quote_for",
    "session_clock",
    "session_moment",
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


@dataclass(frozen=True, slots=True)
class Costs:
    """The cost model of fills: slippage in basis points of the close, and commissions.

    All zero (:data:`FRICTIONLESS`) fills at the close exactly and charges nothing.
    """

    slippage_bps: Decimal = Decimal(0)
    commission_per_share: Decimal = Decimal(0)
    commission_bps: Decimal = Decimal(0)
    commission_min: Decimal = Decimal(0)

    @property
    def charges_commission(self) -> bool:
        """Whether a fill pays a commission (a per-share or a bps rate is set)."""
        return self.commission_per_share != 0 or self.commission_bps != 0

    def slipped(self, side: OrderSide, close: Decimal) -> Decimal:
        """The price a fill at ``close`` trades at: moved against ``side`` by the slippage."""
        if self.slippage_bps == 0:
            return fill_price(close)
        move = self.slippage_bps / _BPS
        factor = 1 + move if side is OrderSide.BUY else 1 - move
        return fill_price(close * factor)

    def commission(self, qty: Decimal, price: Decimal) -> Decimal:
        """The commission of one fill of ``qty`` at ``price`` (cents; 0 when frictionless)."""
        if not self.charges_commission:
            return Decimal(0)
        raw = qty * self.commission_per_share + qty * price * self.commission_bps / _BPS
        return cents(max(self.commission_min, raw))


FRICTIONLESS = Costs()
"""No slippage, no commission: the exchange's default."""


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_quantity(qty: Decimal, *, symbol: str, order_type: OrderType, fractionable: bool) -> None:
    """Refuse a quantity Alpaca would refuse (precision, fractional rules)."""
    if qty <= 0:
        raise InvalidOrderError(f"qty must be > 0, got {qty}")
    if _decimal_places(qty) > 9:
        raise InvalidOrderError(f"qty {qty} is limited to 9 decimal places")
    if not _is_whole(qty):
        if not fractionable:
            raise InvalidOrderError(f"asset {symbol} is not fractionable")
        if order_type is not OrderType.MARKET:
            raise InvalidOrderError("fractional orders must be market orders with day tif")


def check_limit_price(limit_price: Decimal) -> None:
    """Refuse a sub-penny limit price at or above $1 (sub-$1 prices may use 4 places)."""
    places = 2 if limit_price >= 1 else 4
    if _decimal_places(limit_price) > places:
        raise InvalidOrderError(
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
        raise InvalidOrderError("qty or notional is required")
    if order_type is not OrderType.MARKET:
        raise InvalidOrderError("notional orders must be market orders with day tif")
    if not fractionable:
        raise InvalidOrderError(f"asset {symbol} is not fractionable")
    if _decimal_places(notional) > 2:
        raise InvalidOrderError(f"notional {notional} is limited to 2 decimal places")
    if notional < MIN_NOTIONAL:
        raise InvalidOrderError(f"notional must be >= {MIN_NOTIONAL}, got {notional}")
    result = (notional / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    if result <= 0:
        raise InvalidOrderError(f"notional {notional} buys no {symbol} at {price}")
    return result


@dataclass(frozen=True, slots=True)
class SessionBar:
    """A symbol's prices in one session (already rounded to fill prices)."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def crossing_price(
    side: OrderSide,
    order_type: OrderType,
    limit_price: Decimal | None,
    bar: SessionBar,
    costs: Costs = FRICTIONLESS,
) -> Decimal | None:
    """The price the order trades at in ``bar``'s session, or ``None`` when it does not.

    The close is slipped against the order (``costs``); a limit caps the slipped price.
    """
    close = costs.slipped(side, bar.close)
    if order_type is OrderType.MARKET or limit_price is None:
        return close
    if side is OrderSide.BUY:
        return min(limit_price, close) if limit_price >= bar.low else None
    return max(limit_price, close) if limit_price <= bar.high else None


@dataclass(frozen=True, slots=True)
class Execution:
    """What happens to an order when it meets the session: its status and its fill."""

    status: OrderStatus
    filled_qty: Decimal
    fill_price: Decimal | None


def execute(
    *,
    side: OrderSide,
    order_type: OrderType,
    limit_price: Decimal | None,
    qty: Decimal,
    already_filled: Decimal,
    bar: SessionBar,
    partial_fill_ratio: Decimal | None,
    fractionable: bool,
    costs: Costs = FRICTIONLESS,
) -> Execution:
    """Fill the rest of ``qty`` in ``bar``'s session when crossed: wholly or by the ratio.

    A partial quantity is rounded down (whole shares when not fractionable); when that leaves
    nothing the order does not move. ``filled_qty`` is this fill's quantity only.
    """
    price = crossing_price(side, order_type, limit_price, bar, costs)
    remaining = qty - already_filled
    unchanged = OrderStatus.NEW if already_filled == 0 else OrderStatus.PARTIALLY_FILLED
    if price is None or remaining <= 0:
        return Execution(unchanged, Decimal(0), None)
    filled = remaining
    if partial_fill_ratio is not None and partial_fill_ratio < 1:
        quantum = QTY_QUANTUM if fractionable else _WHOLE
        filled = (remaining * partial_fill_ratio).quantize(quantum, rounding=ROUND_DOWN)
    if filled <= 0:
        return Execution(unchanged, Decimal(0), None)
    status = OrderStatus.FILLED if already_filled + filled == qty else OrderStatus.PARTIALLY_FILLED
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


def session_moment(day: date, at: time) -> datetime:
    """``at`` New York time on ``day``, in UTC."""
    return datetime.combine(day, at, tzinfo=_MARKET_TZ).astimezone(UTC)


def next_trading_day(day: date, trading_days: Collection[date], last_day: date | None) -> date:
    """The first trading day after ``day``: from the dataset, then weekdays past its end."""
    candidate = day + timedelta(days=1)
    while True:
        if last_day is None or candidate > last_day:
            if candidate.weekday() < _SATURDAY:
                return candidate
        elif candidate in trading_days:
            return candidate
        candidate += timedelta(days=1)


def session_clock(
    session: date, *, trading_days: Collection[date], last_day: date | None, at: time
) -> MarketClock:
    """The clock of an account in ``session``: open on a trading day of the dataset.

    It reads ``at`` (New York) on the session's date; ``next_close`` is that day's 16:00 when
    open, and ``next_open`` the next trading day's 9:30.
    """
    is_open = session in trading_days
    following = next_trading_day(session, trading_days, last_day)
    close_day = session if is_open else following
    return MarketClock(
        timestamp=session_moment(session, at),
        is_open=is_open,
        next_open=session_moment(following, _MARKET_OPEN),
        next_close=session_moment(close_day, _MARKET_CLOSE),
    )
