"""Broker values shared by the Alpaca and simulated adapters: validation at construction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from alchemiser_broker import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    BrokerOrder,
    MalformedResponseError,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
)
from alchemiser_broker.alpaca_mapping import order_from_json


def test_order_request_when_qty_and_notional_both_given_then_refused() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        OrderRequest("c", "SPY", OrderSide.BUY, qty=Decimal(1), notional=Decimal(10))
    with pytest.raises(ValueError, match="exactly one"):
        OrderRequest("c", "SPY", OrderSide.BUY)


def test_order_request_when_client_order_id_too_long_then_refused() -> None:
    OrderRequest("x" * MAX_CLIENT_ORDER_ID_LENGTH, "SPY", OrderSide.BUY, qty=Decimal(1))
    with pytest.raises(ValueError, match="client_order_id"):
        OrderRequest("x" * (MAX_CLIENT_ORDER_ID_LENGTH + 1), "SPY", OrderSide.BUY, qty=Decimal(1))


def test_order_request_when_limit_without_price_or_with_notional_then_refused() -> None:
    with pytest.raises(ValueError, match="limit_price"):
        OrderRequest("c", "SPY", OrderSide.BUY, qty=Decimal(1), order_type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="notional"):
        OrderRequest(
            "c",
            "SPY",
            OrderSide.BUY,
            notional=Decimal(10),
            order_type=OrderType.LIMIT,
            limit_price=Decimal(1),
        )
    with pytest.raises(ValueError, match="market order"):
        OrderRequest("c", "SPY", OrderSide.BUY, qty=Decimal(1), limit_price=Decimal(1))


def test_order_request_when_amount_is_float_or_not_positive_then_refused() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        OrderRequest("c", "SPY", OrderSide.BUY, qty=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        OrderRequest("c", "SPY", OrderSide.SELL, qty=Decimal(0))


def test_broker_order_when_timestamps_in_other_zone_then_converted_to_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    order = BrokerOrder(
        broker_order_id="1",
        client_order_id="c",
        symbol="SPY",
        side=OrderSide.SELL,
        order_type=OrderType.MARKET,
        status=OrderStatus.FILLED,
        submitted_at=datetime(2025, 1, 2, 10, 0, tzinfo=eastern),
    )

    assert order.submitted_at == datetime(2025, 1, 2, 15, 0, tzinfo=UTC)
    assert order.submitted_at is not None and order.submitted_at.tzinfo is UTC
    assert order.is_final


def test_broker_order_when_status_open_then_not_final_and_naive_time_refused() -> None:
    common: dict[str, Any] = {
        "broker_order_id": "1",
        "client_order_id": "c",
        "symbol": "SPY",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
    }
    assert not BrokerOrder(**common, status=OrderStatus.PARTIALLY_FILLED).is_final
    with pytest.raises(ValueError, match="timezone-aware"):
        BrokerOrder(**common, status=OrderStatus.NEW, updated_at=datetime(2025, 1, 2))


def test_quote_when_two_sided_then_mid_is_exact() -> None:
    quote = Quote(
        "SPY", Decimal("99.99"), Decimal("100.02"), Decimal(1), Decimal(1), datetime.now(UTC)
    )

    assert quote.is_two_sided
    assert quote.mid == Decimal("100.005")


def test_order_from_json_when_commission_reported_then_kept_else_none() -> None:
    raw = {
        "id": "b-1",
        "client_order_id": "c-1",
        "symbol": "SPY",
        "side": "buy",
        "type": "market",
        "status": "filled",
        "qty": "10",
        "filled_qty": "10",
        "filled_avg_price": "500.25",
    }

    assert order_from_json(raw).commission is None  # Alpaca's Trading API: commission-free
    assert order_from_json({**raw, "commission": "1.5"}).commission == Decimal("1.5")
    with pytest.raises(MalformedResponseError):
        order_from_json({**raw, "commission": "a lot"})
