"""Unit tests of fill attribution: target shares, buy and sell splits, the unattributed bucket."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_ledger.domain import (
    UNATTRIBUTED,
    Fill,
    Side,
    StrategyTargets,
    attribute_fill,
)
from alchemiser_ledger.exceptions import InvalidLedgerInputError

D = Decimal

# A wants SPY and TLT half each; B wants SPY a quarter and GLD three quarters.
TARGETS = StrategyTargets(
    allocations={"A": D("0.6"), "B": D("0.4")},
    weights={
        "A": {"SPY": D("0.5"), "TLT": D("0.5")},
        "B": {"SPY": D("0.25"), "GLD": D("0.75")},
    },
)


def _fill(side: Side, qty: str, symbol: str = "SPY") -> Fill:
    return Fill(
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D("100"),
        fees=D("0"),
        client_order_id="c-1",
        broker_order_id="b-1",
    )


def test_shares_when_two_strategies_want_the_symbol_then_split_by_allocation_times_weight() -> None:
    # SPY: A 0.6 x 0.5 = 0.3, B 0.4 x 0.25 = 0.1; total 0.4 -> A 0.75, B 0.25.
    assert TARGETS.shares("SPY") == {"A": D("0.75"), "B": D("0.25")}


def test_shares_when_one_strategy_wants_the_symbol_then_it_has_all_of_it() -> None:
    assert TARGETS.shares("TLT") == {"A": D("1")}
    assert TARGETS.shares("GLD") == {"B": D("1")}


def test_shares_when_no_strategy_wants_the_symbol_then_empty() -> None:
    assert TARGETS.shares("QQQ") == {}


def test_shares_when_allocation_is_zero_then_strategy_left_out() -> None:
    targets = StrategyTargets(
        allocations={"A": D("1"), "B": D("0")},
        weights={"A": {"SPY": D("1")}, "B": {"SPY": D("1")}},
    )
    assert targets.shares("SPY") == {"A": D("1")}


def test_attribute_when_buy_wanted_by_two_then_split_by_shares() -> None:
    # 7 x 0.75 = 5.25 and 7 x 0.25 = 1.75.
    parts = attribute_fill(_fill(Side.BUY, "7"), TARGETS, holdings={})
    assert parts == {"A": D("5.25"), "B": D("1.75")}


def test_attribute_when_buy_share_is_a_third_then_round_down_and_last_takes_remainder() -> None:
    third = D("0.333333333333")
    targets = StrategyTargets(
        allocations={"A": third, "B": third, "C": third},
        weights={name: {"SPY": D("1")} for name in ("A", "B", "C")},
    )
    # 10 / 3 = 3.3333333333... -> 3.333333333 for A and B; C = 10 - 6.666666666.
    parts = attribute_fill(_fill(Side.BUY, "10"), targets, holdings={})
    assert parts == {"A": D("3.333333333"), "B": D("3.333333333"), "C": D("3.333333334")}
    assert sum(parts.values()) == D("10")


def test_attribute_when_a_part_rounds_to_zero_then_it_is_left_out() -> None:
    targets = StrategyTargets(
        allocations={"a-tiny": D("1E-12"), "b": D("1")},
        weights={"a-tiny": {"SPY": D("1")}, "b": {"SPY": D("1")}},
    )
    # a-tiny: 1 x 1e-12 / (1 + 1e-12) < 1e-9 -> 0, dropped; b takes the whole share.
    assert attribute_fill(_fill(Side.BUY, "1"), targets, holdings={}) == {"b": D("1")}


def test_attribute_when_buy_wanted_by_nobody_then_unattributed() -> None:
    parts = attribute_fill(_fill(Side.BUY, "3", symbol="QQQ"), TARGETS, holdings={})
    assert parts == {UNATTRIBUTED: D("3")}


def test_attribute_when_sell_then_split_by_holdings_not_targets() -> None:
    # The targets would split SPY 3:1 (A:B); the holdings are 1:3, and a sell follows them.
    holdings = {"A": D("10"), "B": D("30")}
    # 20 x 10/40 = 5 and 20 x 30/40 = 15.
    assert attribute_fill(_fill(Side.SELL, "20"), TARGETS, holdings) == {
        "A": D("5"),
        "B": D("15"),
    }


def test_attribute_when_sell_share_is_a_third_then_round_down_and_last_takes_remainder() -> None:
    holdings = {"A": D("1"), "B": D("2")}
    # 1 x 1/3 = 0.333333333...; B = 1 - 0.333333333.
    assert attribute_fill(_fill(Side.SELL, "1"), TARGETS, holdings) == {
        "A": D("0.333333333"),
        "B": D("0.666666667"),
    }


def test_attribute_when_sell_of_everything_then_each_sells_its_holding() -> None:
    holdings = {"A": D("1.5"), "B": D("2.5")}
    assert attribute_fill(_fill(Side.SELL, "4"), TARGETS, holdings) == holdings


def test_attribute_when_remainder_exceeds_last_holding_then_excess_moves_to_first_with_room() -> (
    None
):
    holdings = {"A": D("1"), "B": D("1"), "C": D("1")}
    # 2.999999999 / 3 = 0.999999999666... -> A, B 0.999999999; C's remainder 1.000000001 > 1,
    # so C sells its 1 and the excess 0.000000001 goes to A (room 0.000000001).
    parts = attribute_fill(_fill(Side.SELL, "2.999999999"), TARGETS, holdings)
    assert parts == {"A": D("1"), "B": D("0.999999999"), "C": D("1")}


def test_attribute_when_sell_and_nothing_held_then_unattributed() -> None:
    assert attribute_fill(_fill(Side.SELL, "2"), TARGETS, holdings={}) == {UNATTRIBUTED: D("2")}
    assert attribute_fill(_fill(Side.SELL, "2"), TARGETS, holdings={"A": D("0")}) == {
        UNATTRIBUTED: D("2")
    }


def test_attribute_when_sell_exceeds_holdings_then_excess_unattributed() -> None:
    holdings = {"A": D("3"), "B": D("2")}
    # A and B sell all 5 they hold; 6 - 5 = 1 is nobody's.
    assert attribute_fill(_fill(Side.SELL, "6"), TARGETS, holdings) == {
        UNATTRIBUTED: D("1"),
        "A": D("3"),
        "B": D("2"),
    }


def test_attribute_when_holding_negative_then_invalid_input() -> None:
    with pytest.raises(InvalidLedgerInputError):
        attribute_fill(_fill(Side.SELL, "1"), TARGETS, holdings={"A": D("-1")})


def test_targets_when_weights_without_allocation_then_invalid_input() -> None:
    with pytest.raises(InvalidLedgerInputError):
        StrategyTargets(allocations={"A": D("1")}, weights={"B": {"SPY": D("1")}})


def test_targets_when_strategy_named_unattributed_then_invalid_input() -> None:
    with pytest.raises(InvalidLedgerInputError):
        StrategyTargets(allocations={UNATTRIBUTED: D("1")}, weights={})


def test_targets_when_weight_negative_then_invalid_input() -> None:
    with pytest.raises(InvalidLedgerInputError):
        StrategyTargets(allocations={"A": D("1")}, weights={"A": {"SPY": D("-0.1")}})
