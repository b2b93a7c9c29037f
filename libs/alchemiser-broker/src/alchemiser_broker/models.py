"""Broker values: what a broker adapter returns and what an order request carries.

Frozen dataclasses; every amount, quantity and price is a :class:`~decimal.Decimal` and every
timestamp a timezone-aware UTC :class:`~datetime.datetime` (naive values are refused, other
zones converted). Validation happens at construction, so an invalid value never travels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from alchemiser_common.events.enums import OrderSide, OrderStatus, OrderType

__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "AccountState",
    "AssetInfo",
    "BrokerOrder",
    "BrokerPosition",
    "MarketClock",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Quote",
    "TimeInForce",
]

# Alpaca accepts 128 characters today; older documentation said 48, so stay at or below it.
MAX_CLIENT_ORDER_ID_LENGTH = 48


class TimeInForce(StrEnum):
    """How long an order stays working; the system only trades DAY orders."""

    DAY = "day"


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _require_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")


@dataclass(frozen=True, slots=True)
class AccountState:
    """Balances of the trading account.

    ``account_id`` is the broker's internal id; ``account_number`` the number the account is
    known by (Alpaca's ``account_number``), which events name as their ``account_id``.
    """

    account_id: str
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    currency: str = "USD"
    trading_blocked: bool = False
    account_number: str = ""

    def __post_init__(self) -> None:
        for name in ("cash", "buying_power", "equity"):
            _require_decimal(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """One open position; ``qty`` is negative for a short position."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_value: Decimal
    current_price: Decimal

    def __post_init__(self) -> None:
        for name in ("qty", "avg_entry_price", "market_value", "current_price"):
            _require_decimal(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest best bid and ask of one symbol."""

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    timestamp: datetime

    def __post_init__(self) -> None:
        for name in ("bid", "ask", "bid_size", "ask_size"):
            _require_decimal(name, getattr(self, name))
        object.__setattr__(self, "timestamp", _utc("timestamp", self.timestamp))

    @property
    def is_two_sided(self) -> bool:
        """Whether both sides are positive and not crossed (usable for pricing)."""
        return self.bid > 0 and self.ask > 0 and self.ask >= self.bid

    @property
    def mid(self) -> Decimal:
        """The midpoint of bid and ask."""
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class MarketClock:
    """Whether the market is open now, and its next open and close."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime

    def __post_init__(self) -> None:
        for name in ("timestamp", "next_open", "next_close"):
            object.__setattr__(self, name, _utc(name, getattr(self, name)))


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """Trading attributes of one symbol."""

    symbol: str
    fractionable: bool
    tradable: bool


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to submit: exactly one of ``qty`` and ``notional``; ``limit_price`` iff limit.

    ``client_order_id`` is the idempotency key (deterministic per intent, at most 48
    characters); a notional amount is only allowed for market orders (Alpaca's rule).
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal | None = None
    notional: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_CLIENT_ORDER_ID_LENGTH:
            raise ValueError(
                f"client_order_id must be 1..{MAX_CLIENT_ORDER_ID_LENGTH} characters, "
                f"got {len(self.client_order_id)}"
            )
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        object.__setattr__(self, "side", OrderSide(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))
        if (self.qty is None) == (self.notional is None):
            raise ValueError("exactly one of qty and notional must be given")
        amount_name, amount = (
            ("qty", self.qty) if self.qty is not None else ("notional", self.notional)
        )
        _require_decimal(amount_name, amount)
        assert amount is not None
        if amount <= 0:
            raise ValueError(f"{amount_name} must be positive, got {amount}")
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None:
                raise ValueError("a limit order needs a limit_price")
            if self.notional is not None:
                raise ValueError("a notional amount is only allowed for market orders")
        elif self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")
        if self.limit_price is not None:
            _require_decimal("limit_price", self.limit_price)
            if self.limit_price <= 0:
                raise ValueError(f"limit_price must be positive, got {self.limit_price}")


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker knows it; ``filled_qty`` and ``filled_avg_price`` drive positions.

    ``commission`` is what the broker charged for the order's fills, when it says so on the
    order (Alpaca's Broker API and the paper exchange do; Alpaca's Trading API, commission-free,
    does not: ``None``).
    """

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    status: OrderStatus
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    filled_qty: Decimal = field(default=Decimal(0))
    filled_avg_price: Decimal | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    updated_at: datetime | None = None
    commission: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", OrderSide(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "status", OrderStatus(self.status))
        _require_decimal("filled_qty", self.filled_qty)
        for name in ("qty", "notional", "limit_price", "filled_avg_price", "commission"):
            value = getattr(self, name)
            if value is not None:
                _require_decimal(name, value)
        for name in ("submitted_at", "filled_at", "updated_at"):
            object.__setattr__(self, name, _utc(name, getattr(self, name)))

    @property
    def is_final(self) -> bool:
        """Whether the order can no longer change (filled, canceled, expired, rejected)."""
        return self.status.is_final
