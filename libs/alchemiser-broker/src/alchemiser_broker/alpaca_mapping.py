"""Translation between Alpaca's JSON and the broker values, with Decimal at the boundary.

Responses are read raw (clients built with ``raw_data=True``): trading-API numbers arrive as
strings and become ``Decimal`` exactly; market-data prices arrive as JSON numbers, which
``requests`` parses to floats, and become ``Decimal(repr(float))`` — exact for the at most
15 significant digits Alpaca sends. Requests go the other way through alpaca-py's request
models, whose ``qty``/``notional``/``limit_price`` fields are floats: :func:`exact_float`
refuses any value that a float would not carry exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.trading.enums import OrderSide as AlpacaOrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from alchemiser_broker.exceptions import MalformedResponseError
from alchemiser_broker.models import (
    AccountState,
    AssetInfo,
    BrokerOrder,
    BrokerPosition,
    MarketClock,
    OrderRequest,
    Quote,
)
from alchemiser_common.events.enums import OrderSide, OrderStatus, OrderType

__all__ = [
    "account_from_json",
    "as_list",
    "as_mapping",
    "asset_from_json",
    "clock_from_json",
    "exact_float",
    "order_from_json",
    "order_request_to_alpaca",
    "parse_decimal",
    "parse_time",
    "position_from_json",
    "quote_from_json",
    "trade_price_from_json",
]

_FRACTION = re.compile(r"\.(\d{6})\d+")


def parse_decimal(value: object, name: str) -> Decimal:
    """A Decimal from a JSON string or number; anything else is a malformed response."""
    if isinstance(value, bool) or value is None:
        raise MalformedResponseError(f"{name}: expected a number, got {value!r}")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        result = Decimal(text)
    except InvalidOperation as err:
        raise MalformedResponseError(f"{name}: not a number: {value!r}") from err
    if not result.is_finite():
        raise MalformedResponseError(f"{name}: not finite: {value!r}")
    return result


def _optional_decimal(value: object, name: str) -> Decimal | None:
    return None if value is None or value == "" else parse_decimal(value, name)


def parse_time(value: object, name: str) -> datetime:
    """A UTC datetime from RFC 3339 text (``Z`` or offset, up to nanoseconds)."""
    if not isinstance(value, str):
        raise MalformedResponseError(f"{name}: expected a timestamp, got {value!r}")
    text = _FRACTION.sub(r".\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as err:
        raise MalformedResponseError(f"{name}: bad timestamp {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _optional_time(value: object, name: str) -> datetime | None:
    return None if value is None or value == "" else parse_time(value, name)


def as_mapping(raw: Any, what: str) -> Mapping[str, Any]:
    """``raw`` if it is a JSON object, else a malformed response."""
    if not isinstance(raw, Mapping):
        raise MalformedResponseError(f"{what}: expected a JSON object, got {type(raw).__name__}")
    return raw


def as_list(raw: Any, what: str) -> list[Any]:
    """``raw`` if it is a JSON array, else a malformed response."""
    if not isinstance(raw, list):
        raise MalformedResponseError(f"{what}: expected a JSON array, got {type(raw).__name__}")
    return raw


def _field(raw: Any, key: str, what: str) -> Any:
    if key not in as_mapping(raw, what):
        raise MalformedResponseError(f"{what}: missing field {key!r}")
    return raw[key]


def account_from_json(raw: Any) -> AccountState:
    """``GET /v2/account`` as an :class:`AccountState`."""
    return AccountState(
        account_id=str(_field(raw, "id", "account")),
        cash=parse_decimal(_field(raw, "cash", "account"), "cash"),
        buying_power=parse_decimal(_field(raw, "buying_power", "account"), "buying_power"),
        equity=parse_decimal(_field(raw, "equity", "account"), "equity"),
        currency=str(raw.get("currency") or "USD"),
        trading_blocked=bool(raw.get("trading_blocked")) or bool(raw.get("account_blocked")),
        account_number=str(raw.get("account_number") or ""),
    )


def position_from_json(raw: Any) -> BrokerPosition:
    """One element of ``GET /v2/positions`` as a :class:`BrokerPosition` (short: qty < 0)."""
    qty = parse_decimal(_field(raw, "qty", "position"), "qty")
    if raw.get("side") == "short" and qty > 0:
        qty = -qty
    return BrokerPosition(
        symbol=str(_field(raw, "symbol", "position")),
        qty=qty,
        avg_entry_price=parse_decimal(_field(raw, "avg_entry_price", "position"), "avg_entry"),
        market_value=parse_decimal(_field(raw, "market_value", "position"), "market_value"),
        current_price=parse_decimal(_field(raw, "current_price", "position"), "current_price"),
    )


def clock_from_json(raw: Any) -> MarketClock:
    """``GET /v2/clock`` as a :class:`MarketClock`."""
    return MarketClock(
        timestamp=parse_time(_field(raw, "timestamp", "clock"), "timestamp"),
        is_open=bool(_field(raw, "is_open", "clock")),
        next_open=parse_time(_field(raw, "next_open", "clock"), "next_open"),
        next_close=parse_time(_field(raw, "next_close", "clock"), "next_close"),
    )


def asset_from_json(raw: Any) -> AssetInfo:
    """``GET /v2/assets/{symbol}`` as an :class:`AssetInfo` (inactive assets not tradable)."""
    return AssetInfo(
        symbol=str(_field(raw, "symbol", "asset")),
        fractionable=bool(raw.get("fractionable")),
        tradable=bool(raw.get("tradable")) and raw.get("status", "active") == "active",
    )


def order_from_json(raw: Any) -> BrokerOrder:
    """An Alpaca order object as a :class:`BrokerOrder`."""
    order_type = raw.get("type") or raw.get("order_type")
    try:
        side = OrderSide(_field(raw, "side", "order"))
        kind = OrderType(str(order_type))
        status = OrderStatus(_field(raw, "status", "order"))
    except ValueError as err:
        raise MalformedResponseError(f"order: unsupported value: {err}") from err
    return BrokerOrder(
        broker_order_id=str(_field(raw, "id", "order")),
        client_order_id=str(_field(raw, "client_order_id", "order")),
        symbol=str(_field(raw, "symbol", "order")),
        side=side,
        order_type=kind,
        status=status,
        qty=_optional_decimal(raw.get("qty"), "qty"),
        notional=_optional_decimal(raw.get("notional"), "notional"),
        limit_price=_optional_decimal(raw.get("limit_price"), "limit_price"),
        filled_qty=_optional_decimal(raw.get("filled_qty"), "filled_qty") or Decimal(0),
        filled_avg_price=_optional_decimal(raw.get("filled_avg_price"), "filled_avg_price"),
        submitted_at=_optional_time(raw.get("submitted_at"), "submitted_at"),
        filled_at=_optional_time(raw.get("filled_at"), "filled_at"),
        updated_at=_optional_time(raw.get("updated_at"), "updated_at"),
        commission=_optional_decimal(raw.get("commission"), "commission"),
    )


def trade_price_from_json(raw: Any, symbol: str) -> Decimal:
    """The price ``p`` of a latest-trade object."""
    return parse_decimal(_field(raw, "p", f"trade {symbol}"), f"{symbol} price")


def quote_from_json(raw: Any, symbol: str) -> Quote:
    """A latest-quote object (``bp``/``ap``/``bs``/``as``/``t``) as a :class:`Quote`."""
    what = f"quote {symbol}"
    return Quote(
        symbol=symbol,
        bid=parse_decimal(_field(raw, "bp", what), "bid"),
        ask=parse_decimal(_field(raw, "ap", what), "ask"),
        bid_size=parse_decimal(raw.get("bs", 0), "bid_size"),
        ask_size=parse_decimal(raw.get("as", 0), "ask_size"),
        timestamp=parse_time(_field(raw, "t", what), "t"),
    )


def exact_float(value: Decimal, name: str) -> float:
    """``value`` as the float alpaca-py's request models need; refuse a lossy conversion."""
    converted = float(value)
    if Decimal(repr(converted)) != value:
        raise ValueError(f"{name}={value} cannot be sent exactly (alpaca-py sends floats)")
    return converted


def order_request_to_alpaca(request: OrderRequest) -> MarketOrderRequest | LimitOrderRequest:
    """The alpaca-py request model for ``request`` (validated by alpaca-py as well)."""
    fields: dict[str, Any] = {
        "symbol": request.symbol,
        "side": AlpacaOrderSide(request.side.value),
        "time_in_force": AlpacaTimeInForce(request.time_in_force.value),
        "client_order_id": request.client_order_id,
    }
    if request.qty is not None:
        fields["qty"] = exact_float(request.qty, "qty")
    if request.notional is not None:
        fields["notional"] = exact_float(request.notional, "notional")
    if request.order_type is OrderType.LIMIT:
        assert request.limit_price is not None
        fields["limit_price"] = exact_float(request.limit_price, "limit_price")
        return LimitOrderRequest(**fields)
    return MarketOrderRequest(**fields)
