"""JSON shapes of Alpaca's trading and market-data APIs, as the public OpenAPI specs give them.

Trading-API numbers are strings; market-data prices are JSON numbers. Only the fields a
client could reasonably read are filled; the rest of each object carries its documented
default so alpaca-py's models would validate it too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "FakeOrder",
    "FakePosition",
    "account_json",
    "asset_json",
    "clock_json",
    "error_json",
    "money",
    "position_json",
    "quote_json",
    "rfc3339",
    "trade_json",
]

_ASSET_NAMESPACE = uuid.UUID("5b0c7f43-0ef4-4d5c-9b6a-7d8f9a6b2c10")


def rfc3339(value: datetime | None) -> str | None:
    """``2024-01-02T15:04:05.123456Z`` (Alpaca's form), or ``None``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def money(value: Decimal | None) -> str | None:
    """A Decimal as the plain string Alpaca sends (no exponent), or ``None``."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def asset_id(symbol: str) -> str:
    """A stable asset id per symbol."""
    return str(uuid.uuid5(_ASSET_NAMESPACE, symbol))


def error_json(code: int, message: str) -> dict[str, Any]:
    """Alpaca's error body."""
    return {"code": code, "message": message}


@dataclass
class FakePosition:
    """A position held by the fake account (``qty`` > 0; the fake does not short)."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal


@dataclass
class FakeOrder:
    """An order in the fake's book."""

    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    created_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "new"
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill, be canceled or replaced."""
        return self.status in {"new", "accepted", "pending_new", "partially_filled", "held"}

    def to_json(self) -> dict[str, Any]:
        """The order object of ``/v2/orders``."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at or self.created_at),
            "submitted_at": rfc3339(self.created_at),
            "filled_at": rfc3339(self.filled_at),
            "expired_at": None,
            "canceled_at": rfc3339(self.canceled_at),
            "failed_at": None,
            "replaced_at": rfc3339(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": money(self.notional),
            "qty": money(self.qty),
            "filled_qty": money(self.filled_qty),
            "filled_avg_price": money(self.filled_avg_price),
            "order_class": "simple",
            "order_type": self.order_type,
            "type": self.order_type,
            "side": self.side,
            "position_intent": f"{self.side}_to_{'open' if self.side == 'buy' else 'close'}",
            "time_in_force": self.time_in_force,
            "limit_price": money(self.limit_price),
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


def account_json(
    account_id: str, cash: Decimal, long_value: Decimal, *, trading_blocked: bool
) -> dict[str, Any]:
    """The object of ``GET /v2/account`` (a cash account: buying power = cash)."""
    equity = cash + long_value
    return {
        "id": account_id,
        "account_number": "PA" + account_id.replace("-", "")[:10].upper(),
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": money(cash),
        "regt_buying_power": money(cash),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": money(cash),
        "cash": money(cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": money(equity),
        "pattern_day_trader": False,
        "trading_blocked": trading_blocked,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": "2024-01-02T14:30:00.000000Z",
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": money(equity),
        "last_equity": money(equity),
        "long_market_value": money(long_value),
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
    }


def position_json(position: FakePosition, price: Decimal) -> dict[str, Any]:
    """One position object of ``GET /v2/positions``."""
    market_value = position.qty * price
    cost_basis = position.qty * position.avg_entry_price
    pnl = market_value - cost_basis
    pnl_pc = pnl / cost_basis if cost_basis else Decimal(0)
    return {
        "asset_id": asset_id(position.symbol),
        "symbol": position.symbol,
        "exchange": "ARCA",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": money(position.avg_entry_price),
        "qty": money(position.qty),
        "qty_available": money(position.qty),
        "side": "long",
        "market_value": money(market_value),
        "cost_basis": money(cost_basis),
        "unrealized_pl": money(pnl),
        "unrealized_plpc": money(pnl_pc.quantize(Decimal("0.0000000001"))),
        "unrealized_intraday_pl": money(pnl),
        "unrealized_intraday_plpc": money(pnl_pc.quantize(Decimal("0.0000000001"))),
        "current_price": money(price),
        "lastday_price": money(price),
        "change_today": "0",
    }


def clock_json(now: datetime, is_open: bool, next_open: datetime, next_close: datetime) -> Any:
    """The object of ``GET /v2/clock``."""
    return {
        "timestamp": rfc3339(now),
        "is_open": is_open,
        "next_open": rfc3339(next_open),
        "next_close": rfc3339(next_close),
    }


def asset_json(symbol: str, *, fractionable: bool, tradable: bool) -> dict[str, Any]:
    """The object of ``GET /v2/assets/{symbol}``."""
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": "ARCA",
        "symbol": symbol,
        "name": f"{symbol} (fake)",
        "status": "active",
        "tradable": tradable,
        "marginable": True,
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": fractionable,
        "maintenance_margin_requirement": 30,
        "attributes": [],
    }


def trade_json(price: Decimal, at: datetime) -> dict[str, Any]:
    """A latest-trade object of the market-data API (price as a JSON number)."""
    return {"t": rfc3339(at), "x": "V", "p": float(price), "s": 100, "c": ["@"], "i": 1, "z": "B"}


def quote_json(bid: Decimal, ask: Decimal, at: datetime) -> dict[str, Any]:
    """A latest-quote object of the market-data API (prices as JSON numbers)."""
    return {
        "t": rfc3339(at),
        "ax": "V",
        "ap": float(ask),
        "as": 3,
        "bx": "V",
        "bp": float(bid),
        "bs": 2,
        "c": ["R"],
        "z": "B",
    }
