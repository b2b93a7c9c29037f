"""Domain: legs, client order ids, share counts, limit prices and caps (exact Decimals)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from alchemiser_broker import Quote
from alchemiser_common.events import OrderSide
from alchemiser_execution.domain import (
    DAILY_TRADED_VALUE_EXCEEDED,
    MAX_ORDER_VALUE_EXCEEDED,
    PlannedOrder,
    check_caps,
    client_order_id,
    limit_price,
    plan_legs,
    quote_is_usable,
    shares_for,
    size_legs,
    tick_size,
)
from alchemiser_execution.testing import buy, hold, sell

CORRELATION = UUID("0d7c8a3e-51f4-4c3b-9a7e-6b2f1d0c9e84")
HASH = "a" * 64
NOW = datetime(2025, 3, 14, 19, 45, tzinfo=UTC)


def _quote(bid: str, ask: str) -> Quote:
    return Quote("X", Decimal(bid), Decimal(ask), Decimal(100), Decimal(100), NOW)


def test_plan_legs_when_items_listed_in_any_order_then_sells_first_by_priority_and_symbol() -> None:
    items = [buy("TQQQ", "100", priority=2), hold("SMR"), sell("SOXL", "50"), buy("AAA", "100")]
    legs = plan_legs(items)
    assert [(leg.leg, leg.symbol, leg.side) for leg in legs] == [
        (0, "SOXL", OrderSide.SELL),
        (1, "AAA", OrderSide.BUY),
        (2, "TQQQ", OrderSide.BUY),
    ]
    assert plan_legs(list(reversed(items))) == legs


def test_plan_legs_when_sell_targets_zero_then_full_liquidation() -> None:
    legs = plan_legs([sell("SOXL", "100", current="100"), sell("TQQQ", "100", current="300")])
    assert [(leg.symbol, leg.full_liquidation, leg.amount) for leg in legs] == [
        ("SOXL", True, Decimal("100.000000")),
        ("TQQQ", False, Decimal("100.000000")),
    ]


def test_client_order_id_when_derived_then_deterministic_distinct_and_at_most_48() -> None:
    first = client_order_id(CORRELATION, HASH, 0)
    assert first == client_order_id(CORRELATION, HASH, 0)
    assert first.startswith("alc-") and len(first) == 44
    ids = {
        client_order_id(CORRELATION, HASH, leg, attempt) for leg in range(3) for attempt in range(7)
    }
    assert len(ids) == 21
    assert max(len(cid) for cid in ids) <= 48
    assert client_order_id(CORRELATION, "b" * 64, 0) != first


@pytest.mark.parametrize(
    ("amount", "price", "fractionable", "expected"),
    [
        ("1000", "3", True, "333.333333"),
        ("1000", "3", False, "333"),
        ("-1000", "7", True, "142.857142"),
        ("2.99", "3", False, "0"),
        ("10061.137651", "52.34", True, "192.226550"),
    ],
)
def test_shares_for_when_sized_then_rounded_down(
    amount: str, price: str, fractionable: bool, expected: str
) -> None:
    shares = shares_for(Decimal(amount), Decimal(price), fractionable=fractionable)
    assert shares == Decimal(expected)


def test_size_legs_when_various_cases_then_exact_quantities_errors_and_skips() -> None:
    legs = plan_legs(
        [
            sell("SOXL", "10243.5172", current="10243.5172"),  # full liquidation
            sell("TECL", "5000"),  # more than held: capped at the position
            sell("NONE", "10"),  # no position
            buy("TQQQ", "10061.137651"),
            buy("BRK", "100"),  # whole shares: less than one -> skipped
            buy("NOPX", "100"),  # no price
            buy("HALT", "100"),  # not tradable
        ]
    )
    orders = {
        order.symbol: order
        for order in size_legs(
            legs,
            prices={
                "SOXL": Decimal("24.86"),
                "TECL": Decimal("50"),
                "NONE": Decimal(1),
                "TQQQ": Decimal("52.34"),
                "BRK": Decimal("450.10"),
                "HALT": Decimal(10),
            },
            fractionable={"TQQQ": True, "TECL": True, "BRK": False, "SOXL": True},
            positions={"SOXL": Decimal("412.123456789"), "TECL": Decimal("20.5")},
            client_order_id=lambda leg: f"cid-{leg}",
            unavailable={"HALT": "HALT is not tradable"},
        )
    }
    assert orders["SOXL"].qty == Decimal("412.123456789") and orders["SOXL"].placeable
    assert orders["TECL"].qty == Decimal("20.5")
    assert orders["NONE"].error == "no open position in NONE to sell"
    assert orders["TQQQ"].qty == Decimal("192.226550")
    assert orders["TQQQ"].value == Decimal("10061.137627")
    assert orders["BRK"].skipped is not None and not orders["BRK"].placeable
    assert orders["NOPX"].error == "no price for NOPX"
    assert orders["HALT"].error == "HALT is not tradable"


def test_limit_price_when_pegged_then_moves_from_mid_towards_far_side() -> None:
    quote = _quote("49.90", "49.98")
    buys = [limit_price(OrderSide.BUY, quote, peg, 2) for peg in range(3)]
    sells = [limit_price(OrderSide.SELL, quote, peg, 2) for peg in range(3)]
    assert buys == [Decimal("49.94"), Decimal("49.96"), Decimal("49.97")]
    assert sells == [Decimal("49.94"), Decimal("49.92"), Decimal("49.91")]


def test_limit_price_when_below_one_dollar_then_sub_penny_ticks() -> None:
    quote = _quote("0.5000", "0.5010")
    assert tick_size(Decimal("0.99")) == Decimal("0.0001")
    assert limit_price(OrderSide.BUY, quote, 1, 2) == Decimal("0.5007")


def test_limit_price_when_peg_out_of_range_then_error() -> None:
    with pytest.raises(ValueError, match="peg 3"):
        limit_price(OrderSide.BUY, _quote("10", "10.01"), 3, 2)


@pytest.mark.parametrize(
    ("bid", "ask", "usable"),
    [("100", "100.50", True), ("100", "100.51", False), ("0", "100", False), ("101", "100", False)],
)
def test_quote_is_usable_when_spread_checked_then_half_percent_limit(
    bid: str, ask: str, usable: bool
) -> None:
    assert quote_is_usable(_quote(bid, ask), Decimal("0.005")) is usable
    assert quote_is_usable(None, Decimal("0.005")) is False


def _orders(*values: str) -> list[PlannedOrder]:
    legs = plan_legs([buy(f"S{i}", value) for i, value in enumerate(values)])
    return size_legs(
        legs,
        prices={f"S{i}": Decimal(1) for i in range(len(values))},
        fractionable={f"S{i}": True for i in range(len(values))},
        positions={},
        client_order_id=str,
    )


def test_check_caps_when_one_order_too_large_then_breach_names_it() -> None:
    breach = check_caps(
        _orders("100", "600"),
        max_order_value=Decimal(500),
        max_daily_traded_value=Decimal(10_000),
        traded_today=Decimal(0),
    )
    assert breach is not None
    assert (breach.reason, breach.symbols) == (MAX_ORDER_VALUE_EXCEEDED, ("S1",))


def test_check_caps_when_day_total_exceeds_cap_then_circuit_breaker() -> None:
    orders = _orders("300", "200")
    kwargs = {"max_order_value": Decimal(500), "max_daily_traded_value": Decimal(1000)}
    assert check_caps(orders, traded_today=Decimal(500), **kwargs) is None
    breach = check_caps(orders, traded_today=Decimal("500.01"), **kwargs)
    assert breach is not None and breach.reason == DAILY_TRADED_VALUE_EXCEEDED
