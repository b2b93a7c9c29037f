"""The exchange's answers in the JSON shapes of Alpaca's trading and market-data APIs.

Trading-API numbers are strings; market-data prices and the portfolio history's figures are
JSON numbers. Only the fields a
client could reasonably read are filled; the rest of each object carries its documented
default so alpaca-py's models validate it too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from alchemiser_broker.models import MarketClock, Quote
from alchemiser_exchange.history import TIMEFRAME, EquityPoint
from alchemiser_exchange.orders import TradeUpdate
from alchemiser_exchange.rules import MONEY_QUANTUM, SessionBar
from alchemiser_exchange.schema import OrderRecord

if TYPE_CHECKING:
    from alchemiser_exchange.book import AccountView, PositionView

__all__ = [
    "account_json",
    "asset_json",
    "bar_json",
    "clock_json",
    "error_json",
    "money",
    "order_json",
    "portfolio_history_text",
    "position_json",
    "quote_json",
    "rfc3339",
    "trade_json",
    "trade_update_json",
]

_ASSET_NAMESPACE = uuid.UUID("5b0c7f43-0ef4-4d5c-9b6a-7d8f9a6b2c10")
_ACCOUNT_NAMESPACE = uuid.UUID("0d6f4a52-62a1-4c1e-9f0e-3c1f5b7f2a21")
_NEW_YORK = ZoneInfo("America/New_York")
_RATIO_QUANTUM = Decimal("0.0000000001")


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


def order_json(order: OrderRecord) -> dict[str, Any]:
    """The order object of ``/v2/orders`` (and of a trade update).

    ``commission`` (dollars, the order's fills so far) is the field Alpaca's Broker API puts on
    an order that was charged one; the Trading API's clients ignore it.
    """
    side = order.side.value
    return {
        "id": order.broker_order_id,
        "client_order_id": order.client_order_id,
        "created_at": rfc3339(order.submitted_at),
        "updated_at": rfc3339(order.updated_at),
        "submitted_at": rfc3339(order.submitted_at),
        "filled_at": rfc3339(order.filled_at),
        "expired_at": rfc3339(order.expired_at),
        "canceled_at": rfc3339(order.canceled_at),
        "failed_at": None,
        "replaced_at": rfc3339(order.updated_at) if order.replaced_by else None,
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": money(order.notional),
        "qty": money(order.qty if order.qty is not None or order.notional else order.target_qty),
        "filled_qty": money(order.filled_qty),
        "filled_avg_price": money(order.filled_avg_price),
        "commission": money(order.fees),
        "order_class": "simple",
        "order_type": order.order_type.value,
        "type": order.order_type.value,
        "side": side,
        "position_intent": f"{side}_to_{'open' if side == 'buy' else 'close'}",
        "time_in_force": order.time_in_force,
        "limit_price": money(order.limit_price),
        "stop_price": None,
        "status": order.status.value,
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }


def trade_update_json(update: TradeUpdate) -> dict[str, Any]:
    """One message of the trade-updates stream.

    A fill also carries its ``commission`` (dollars): not one of Alpaca's fields, and ignored
    by clients that do not know it (alpaca-py's ``TradeUpdate`` accepts the message as is).
    """
    data: dict[str, Any] = {
        "event": update.event,
        "timestamp": rfc3339(update.at),
        "order": order_json(update.order),
    }
    if update.price is not None:
        data["price"] = money(update.price)
        data["qty"] = money(update.qty)
        data["position_qty"] = money(update.position_qty)
        data["execution_id"] = str(uuid.uuid4())
        data["commission"] = money(update.fee if update.fee is not None else Decimal(0))
    return {"stream": "trade_updates", "data": data}


def account_json(view: AccountView) -> dict[str, Any]:
    """The object of ``GET /v2/account`` (a cash account: buying power is cash less holds)."""
    record = view.record
    return {
        "id": str(uuid.uuid5(_ACCOUNT_NAMESPACE, record.account_number)),
        "account_number": record.account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": record.currency,
        "buying_power": money(view.buying_power),
        "regt_buying_power": money(view.buying_power),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": money(view.buying_power),
        "cash": money(view.cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": money(view.equity),
        "pattern_day_trader": False,
        "trading_blocked": record.trading_blocked,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": rfc3339(record.created_at),
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": money(view.equity),
        "last_equity": money(view.equity),
        "long_market_value": money(view.long_market_value),
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
    }


def position_json(position: PositionView) -> dict[str, Any]:
    """One position object of ``GET /v2/positions``."""
    pnl = position.market_value - position.cost_basis
    pnl_pc = pnl / position.cost_basis if position.cost_basis else Decimal(0)
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
        "market_value": money(position.market_value),
        "cost_basis": money(position.cost_basis),
        "unrealized_pl": money(pnl),
        "unrealized_plpc": money(pnl_pc.quantize(Decimal("0.0000000001"))),
        "unrealized_intraday_pl": money(pnl),
        "unrealized_intraday_plpc": money(pnl_pc.quantize(Decimal("0.0000000001"))),
        "current_price": money(position.current_price),
        "lastday_price": money(position.current_price),
        "change_today": "0",
    }


def clock_json(clock: MarketClock) -> dict[str, Any]:
    """The object of ``GET /v2/clock``."""
    return {
        "timestamp": rfc3339(clock.timestamp),
        "is_open": clock.is_open,
        "next_open": rfc3339(clock.next_open),
        "next_close": rfc3339(clock.next_close),
    }


def asset_json(symbol: str, *, fractionable: bool, tradable: bool) -> dict[str, Any]:
    """The object of ``GET /v2/assets/{symbol}``."""
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": "ARCA",
        "symbol": symbol,
        "name": symbol,
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


def quote_json(quote: Quote) -> dict[str, Any]:
    """A latest-quote object of the market-data API (prices as JSON numbers, as Alpaca's)."""
    return {
        "t": rfc3339(quote.timestamp),
        "ax": "V",
        "ap": float(quote.ask),
        "as": float(quote.ask_size),
        "bx": "V",
        "bp": float(quote.bid),
        "bs": float(quote.bid_size),
        "c": ["R"],
        "z": "B",
    }


def bar_json(bar: SessionBar, at: datetime) -> dict[str, Any]:
    """A latest-bar object of the market-data API (prices as JSON numbers)."""
    return {
        "t": rfc3339(at),
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": 0,
        "n": 0,
        "vw": float(bar.close),
    }


def _number(value: Decimal | None, quantum: Decimal = MONEY_QUANTUM) -> str:
    """A JSON number with exactly the places of ``quantum`` (half-even), or ``null``."""
    if value is None:
        return "null"
    return format(value.quantize(quantum, rounding=ROUND_HALF_EVEN), "f")


def _numbers(values: Sequence[Decimal | None], quantum: Decimal = MONEY_QUANTUM) -> str:
    return "[" + ",".join(_number(value, quantum) for value in values) + "]"


def session_timestamp(session: date) -> int:
    """A daily point's timestamp: the session's midnight in New York, in epoch seconds
    (Alpaca's points are labelled with the start of their window)."""
    return int(datetime.combine(session, time(0), tzinfo=_NEW_YORK).timestamp())


def portfolio_history_text(points: Sequence[EquityPoint]) -> str:
    """The JSON text of ``GET /v2/account/portfolio/history`` (daily points).

    Alpaca sends numbers, not strings; written here by hand so that money keeps exactly two
    places (``100102.50``, not a float's ``100102.5``) and ratios ten. ``base_value`` is the
    equity the first point's profit or loss is measured against (the starting cash on the
    account's first session), as of the start of that session (``base_value_asof``); without
    points it is ``null`` and ``base_value_asof`` left out, as Alpaca does.
    """
    first = points[0] if points else None
    fields = {
        "timestamp": "[" + ",".join(str(session_timestamp(p.session)) for p in points) + "]",
        "equity": _numbers([p.equity for p in points]),
        "profit_loss": _numbers([p.profit_loss for p in points]),
        "profit_loss_pct": _numbers([p.profit_loss_pct for p in points], _RATIO_QUANTUM),
        "base_value": _number(None if first is None else first.base - first.transfers),
    }
    if first is not None:
        fields["base_value_asof"] = json.dumps(first.session.isoformat())
    fields["timeframe"] = json.dumps(TIMEFRAME)
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in fields.items()) + "}"
