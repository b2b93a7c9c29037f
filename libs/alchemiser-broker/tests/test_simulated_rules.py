"""The simulated broker's pure rules and its settings (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from alchemiser_broker import OrderRejectedError, OrderSide, OrderStatus, OrderType
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_broker.simulated_rules import (
    average_entry_price,
    cents,
    check_limit_price,
    execute,
    fill_price,
    market_clock,
    quote_for,
    target_quantity,
)
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.db import create_engine_from_url

NOW = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)


class _StubPrices:
    """A price source that cannot list its dates; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, date]] = []

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        self.asked.append((symbol, day))
        return Decimal("12.345") if symbol == "ABC" else None


def test_cents_when_half_cent_then_rounds_half_even() -> None:
    assert (cents(Decimal("1.005")), cents(Decimal("1.015"))) == (Decimal("1.00"), Decimal("1.02"))


def test_fill_price_when_more_than_four_places_then_rounded() -> None:
    assert fill_price(Decimal("0.123456")) == Decimal("0.1235")


def test_target_quantity_when_notional_then_rounded_down_to_nine_places() -> None:
    qty = target_quantity(
        symbol="X",
        order_type=OrderType.MARKET,
        qty=None,
        notional=Decimal(100),
        price=Decimal(3),
        fractionable=True,
    )
    assert qty == Decimal("33.333333333")


@pytest.mark.parametrize(
    ("notional", "message"),
    [(Decimal("0.99"), "must be >= 1"), (Decimal("10.001"), "2 decimal places")],
)
def test_target_quantity_when_notional_invalid_then_rejected(
    notional: Decimal, message: str
) -> None:
    with pytest.raises(OrderRejectedError, match=message):
        target_quantity(
            symbol="X",
            order_type=OrderType.MARKET,
            qty=None,
            notional=notional,
            price=Decimal(3),
            fractionable=True,
        )


def test_target_quantity_when_qty_beyond_nine_places_then_rejected() -> None:
    with pytest.raises(OrderRejectedError, match="9 decimal places"):
        target_quantity(
            symbol="X",
            order_type=OrderType.MARKET,
            qty=Decimal("0.0000000001"),
            notional=None,
            price=Decimal(3),
            fractionable=True,
        )


@pytest.mark.parametrize(
    ("limit", "allowed"),
    [
        (Decimal("1.23"), True),
        (Decimal("1.230"), True),
        (Decimal("1.234"), False),
        (Decimal("0.1234"), True),
        (Decimal("0.12345"), False),
    ],
)
def test_check_limit_price_when_increment_given_then_penny_rule(
    limit: Decimal, allowed: bool
) -> None:
    if allowed:
        check_limit_price(limit)
    else:
        with pytest.raises(OrderRejectedError, match="sub-penny"):
            check_limit_price(limit)


@pytest.mark.parametrize(
    ("side", "limit", "status"),
    [
        (OrderSide.BUY, Decimal(10), OrderStatus.FILLED),
        (OrderSide.BUY, Decimal("9.99"), OrderStatus.NEW),
        (OrderSide.SELL, Decimal(10), OrderStatus.FILLED),
        (OrderSide.SELL, Decimal("10.01"), OrderStatus.NEW),
    ],
)
def test_execute_when_limit_at_or_through_price_then_fills(
    side: OrderSide, limit: Decimal, status: OrderStatus
) -> None:
    result = execute(
        side=side,
        order_type=OrderType.LIMIT,
        limit_price=limit,
        qty=Decimal(2),
        price=Decimal(10),
        partial_fill_ratio=None,
        fractionable=True,
    )
    assert result.status is status
    assert result.filled_qty == (Decimal(2) if status is OrderStatus.FILLED else Decimal(0))


def test_execute_when_partial_rounds_to_nothing_then_stays_new() -> None:
    result = execute(
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        limit_price=None,
        qty=Decimal(1),
        price=Decimal(10),
        partial_fill_ratio=Decimal("0.5"),
        fractionable=False,
    )
    assert (result.status, result.filled_qty, result.fill_price) == (
        OrderStatus.NEW,
        Decimal(0),
        None,
    )


def test_average_entry_price_when_second_buy_then_weighted_mean() -> None:
    assert average_entry_price(Decimal(1), Decimal(10), Decimal(2), Decimal(11)) == Decimal(
        "10.666667"
    )


def test_quote_for_when_below_one_dollar_then_sub_penny_ticks() -> None:
    quote = quote_for("P", Decimal("0.5"), spread_bps=Decimal(100), size=Decimal(1), timestamp=NOW)
    assert (quote.bid, quote.ask) == (Decimal("0.4975"), Decimal("0.5025"))
    assert quote.is_two_sided


def test_market_clock_when_friday_after_close_then_monday_open_and_close() -> None:
    clock = market_clock(datetime(2025, 3, 7, 22, 0, tzinfo=UTC), is_open=False)
    assert clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)
    assert clock.next_close == datetime(2025, 3, 10, 20, 0, tzinfo=UTC)


def test_settings_when_ratio_out_of_range_then_invalid() -> None:
    with pytest.raises(ValidationError):
        SimulatedBrokerSettings(partial_fill_ratio=Decimal("1.5"))
    with pytest.raises(ValidationError):
        SimulatedBrokerSettings(partial_fill_ratio=Decimal(0))


def test_settings_when_frozen_then_not_assignable() -> None:
    settings = SimulatedBrokerSettings()
    with pytest.raises(ValidationError):
        settings.account_id = "other"  # type: ignore[misc]


def test_trading_date_when_source_lists_no_dates_then_clock_date(sqlite_url: str) -> None:
    engine = create_engine_from_url(sqlite_url)
    prices = _StubPrices()
    try:
        broker = SimulatedBroker(engine, prices, SimulatedBrokerSettings(), clock=lambda: NOW)
        assert broker.get_latest_prices(["ABC", "XYZ"]) == {"ABC": Decimal("12.345")}
    finally:
        engine.dispose()
    assert prices.asked == [("ABC", date(2025, 3, 7)), ("XYZ", date(2025, 3, 7))]
