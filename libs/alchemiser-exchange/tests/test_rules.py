"""The exchange's pure trading rules and its settings (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from pydantic import ValidationError

from alchemiser_broker.models import OrderSide, OrderStatus, OrderType
from alchemiser_exchange import ExchangeSettings, TradingRules
from alchemiser_exchange.errors import InvalidOrderError
from alchemiser_exchange.rules import (
    SessionBar,
    average_entry_price,
    cents,
    check_limit_price,
    crossing_price,
    execute,
    fill_price,
    next_trading_day,
    quote_for,
    session_clock,
    session_moment,
    target_quantity,
)

NOW = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)
FLAT_10 = SessionBar(Decimal(10), Decimal(10), Decimal(10), Decimal(10))
RANGE = SessionBar(open=Decimal(100), high=Decimal(105), low=Decimal(95), close=Decimal(101))
AT = time(15, 50)


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
    with pytest.raises(InvalidOrderError, match=message):
        target_quantity(
            symbol="X",
            order_type=OrderType.MARKET,
            qty=None,
            notional=notional,
            price=Decimal(3),
            fractionable=True,
        )


def test_target_quantity_when_notional_on_limit_order_then_rejected() -> None:
    with pytest.raises(InvalidOrderError, match="market orders"):
        target_quantity(
            symbol="X",
            order_type=OrderType.LIMIT,
            qty=None,
            notional=Decimal(100),
            price=Decimal(3),
            fractionable=True,
        )


def test_target_quantity_when_qty_beyond_nine_places_then_rejected() -> None:
    with pytest.raises(InvalidOrderError, match="9 decimal places"):
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
        with pytest.raises(InvalidOrderError, match="sub-penny"):
            check_limit_price(limit)


@pytest.mark.parametrize(
    ("side", "limit", "price"),
    [
        (OrderSide.BUY, Decimal(110), Decimal(101)),  # above the close: the close
        (OrderSide.BUY, Decimal(99), Decimal(99)),  # between low and close: the limit
        (OrderSide.BUY, Decimal(95), Decimal(95)),  # at the low
        (OrderSide.BUY, Decimal("94.99"), None),  # below the low: no trade
        (OrderSide.SELL, Decimal(90), Decimal(101)),  # below the close: the close
        (OrderSide.SELL, Decimal(103), Decimal(103)),  # between close and high: the limit
        (OrderSide.SELL, Decimal(105), Decimal(105)),  # at the high
        (OrderSide.SELL, Decimal("105.01"), None),  # above the high: no trade
    ],
)
def test_crossing_price_when_limit_then_range_decides_and_price_is_the_better_of_two(
    side: OrderSide, limit: Decimal, price: Decimal | None
) -> None:
    assert crossing_price(side, OrderType.LIMIT, limit, RANGE) == price


def test_crossing_price_when_market_then_the_close() -> None:
    assert crossing_price(OrderSide.BUY, OrderType.MARKET, None, RANGE) == Decimal(101)
    assert crossing_price(OrderSide.SELL, OrderType.MARKET, None, RANGE) == Decimal(101)


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
        already_filled=Decimal(0),
        bar=FLAT_10,
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
        already_filled=Decimal(0),
        bar=FLAT_10,
        partial_fill_ratio=Decimal("0.5"),
        fractionable=False,
    )
    assert (result.status, result.filled_qty, result.fill_price) == (
        OrderStatus.NEW,
        Decimal(0),
        None,
    )


def test_execute_when_partly_filled_before_then_rest_fills_and_status_follows() -> None:
    partial = execute(
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        limit_price=None,
        qty=Decimal(10),
        already_filled=Decimal(4),
        bar=FLAT_10,
        partial_fill_ratio=Decimal("0.5"),
        fractionable=True,
    )
    whole = execute(
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        limit_price=None,
        qty=Decimal(10),
        already_filled=Decimal(4),
        bar=FLAT_10,
        partial_fill_ratio=None,
        fractionable=True,
    )

    assert (partial.status, partial.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(3))
    assert (whole.status, whole.filled_qty) == (OrderStatus.FILLED, Decimal(6))


def test_average_entry_price_when_second_buy_then_weighted_mean() -> None:
    assert average_entry_price(Decimal(1), Decimal(10), Decimal(2), Decimal(11)) == Decimal(
        "10.666667"
    )


def test_quote_for_when_below_one_dollar_then_sub_penny_ticks() -> None:
    quote = quote_for("P", Decimal("0.5"), spread_bps=Decimal(100), size=Decimal(1), timestamp=NOW)
    assert (quote.bid, quote.ask) == (Decimal("0.4975"), Decimal("0.5025"))
    assert quote.is_two_sided


def test_session_moment_when_dst_changes_then_new_york_time_kept() -> None:
    assert session_moment(date(2025, 3, 7), AT) == datetime(2025, 3, 7, 20, 50, tzinfo=UTC)
    assert session_moment(date(2025, 3, 10), AT) == datetime(2025, 3, 10, 19, 50, tzinfo=UTC)


def test_session_clock_when_friday_session_past_the_data_then_monday_open_and_close() -> None:
    clock = session_clock(date(2025, 3, 8), trading_days=(), last_day=None, at=AT)

    assert clock.is_open is False
    assert clock.next_open == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)
    assert clock.next_close == datetime(2025, 3, 10, 20, 0, tzinfo=UTC)


def test_next_trading_day_when_inside_the_dataset_then_its_next_day_even_past_a_holiday() -> None:
    days = {date(2025, 4, 17), date(2025, 4, 21)}

    assert next_trading_day(date(2025, 4, 17), days, date(2025, 4, 21)) == date(2025, 4, 21)
    assert next_trading_day(date(2025, 4, 21), days, date(2025, 4, 21)) == date(2025, 4, 22)
    assert next_trading_day(date(2025, 4, 25), days, date(2025, 4, 21)) == date(2025, 4, 28)


def test_settings_when_ratio_out_of_range_then_invalid() -> None:
    with pytest.raises(ValidationError):
        TradingRules(partial_fill_ratio=Decimal("1.5"))
    with pytest.raises(ValidationError):
        TradingRules(partial_fill_ratio=Decimal(0))
    with pytest.raises(ValidationError):
        TradingRules(rate_limit_per_minute=-1)


def test_settings_when_frozen_then_not_assignable() -> None:
    settings = ExchangeSettings()
    with pytest.raises(ValidationError):
        settings.starting_cash = Decimal(1)  # type: ignore[misc]


def test_settings_when_defaults_then_alpaca_like_paper_account() -> None:
    settings = ExchangeSettings()

    assert settings.starting_cash == Decimal(100000)
    assert settings.auto_open is True
    assert settings.partial_fill_ratio is None
    assert settings.session_time == AT
    assert settings.rate_limit_per_minute == 1000
    assert settings.dataset_dir is None
