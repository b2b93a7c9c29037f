"""Rounding of weights and consolidation of several strategy allocations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import numpy as np
import pytest

from alchemiser_strategy.domain.allocation import Allocation
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.consolidation import (
    StrategyOutcome,
    WeightedStrategy,
    consolidate,
    run_strategies,
)
from alchemiser_strategy.domain.errors import ConsolidationError
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk
from alchemiser_strategy.domain.weights import to_decimal_weights

DAY = date(2024, 12, 31)


def _ok(name: str, weight: str, **weights: str) -> StrategyOutcome:
    allocation = Allocation(
        name, DAY, MappingProxyType({s: Decimal(w) for s, w in weights.items()}), ()
    )
    return StrategyOutcome(name, Decimal(weight), allocation=allocation)


def _failed(name: str, weight: str) -> StrategyOutcome:
    return StrategyOutcome(name, Decimal(weight), error=f"{name}.clj:1:1: boom")


# -- rounding ---------------------------------------------------------------------------------


def test_to_decimal_weights_when_sevenths_then_sum_is_exactly_one_and_residue_on_largest() -> None:
    weights = to_decimal_weights({"A": Fraction(3, 7), "B": Fraction(2, 7), "C": Fraction(2, 7)})

    assert weights == {
        "A": Decimal("0.42857142"),
        "B": Decimal("0.28571429"),
        "C": Decimal("0.28571429"),
    }
    assert sum(weights.values()) == Decimal(1)


def test_to_decimal_weights_when_unnormalised_then_divided_by_total() -> None:
    assert to_decimal_weights({"A": Fraction(3), "B": Fraction(1)}, places=2) == {
        "A": Decimal("0.75"),
        "B": Decimal("0.25"),
    }


def test_to_decimal_weights_when_weight_rounds_to_zero_then_dropped() -> None:
    weights = to_decimal_weights({"A": Fraction(1), "DUST": Fraction(1, 10**12)}, places=8)

    assert weights == {"A": Decimal(1)}


@pytest.mark.parametrize("weights", [{}, {"A": Fraction(-1), "B": Fraction(2)}, {"A": Fraction(0)}])
def test_to_decimal_weights_when_invalid_then_value_error(weights: dict[str, Fraction]) -> None:
    with pytest.raises(ValueError):
        to_decimal_weights(weights)


# -- consolidation ----------------------------------------------------------------------------


def test_consolidate_when_all_succeed_then_weighted_sum_per_symbol() -> None:
    result = consolidate(
        [
            _ok("klm", "0.2", UVXY="1"),
            _ok("nuclear", "0.15", UVXY="0.75", BTAL="0.25"),
            _ok("ftlt", "0.15", TQQQ="1"),
        ]
    )

    # normalised strategy weights: 0.4, 0.3, 0.3
    assert result.weights == {
        "BTAL": Decimal("0.075"),
        "TQQQ": Decimal("0.3"),
        "UVXY": Decimal("0.625"),
    }
    assert sum(result.weights.values()) == Decimal(1)
    assert result.strategy_weights == {
        "klm": Decimal("0.4"),
        "nuclear": Decimal("0.3"),
        "ftlt": Decimal("0.3"),
    }
    assert result.all_cash is False
    assert dict(result.failures) == {}


def test_consolidate_when_one_fails_then_it_is_dropped_and_the_rest_renormalised() -> None:
    result = consolidate([_ok("a", "0.5", SPY="1"), _failed("b", "0.3"), _ok("c", "0.2", TLT="1")])

    assert result.weights == {"SPY": Decimal("0.71428571"), "TLT": Decimal("0.28571429")}
    assert sum(result.weights.values()) == Decimal(1)
    assert dict(result.failures) == {"b": "b.clj:1:1: boom"}
    assert set(result.strategy_weights) == {"a", "c"}


def test_consolidate_when_all_fail_then_all_cash_with_empty_weights() -> None:
    result = consolidate([_failed("a", "0.5"), _failed("b", "0.5")])

    assert result.all_cash is True
    assert dict(result.weights) == {}
    assert set(result.failures) == {"a", "b"}


def test_consolidate_when_only_zero_weight_strategies_succeed_then_all_cash() -> None:
    result = consolidate([_failed("a", "1"), _ok("b", "0", SPY="1")])

    assert result.all_cash is True


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ([_ok("a", "-0.1", SPY="1"), _ok("b", "1", SPY="1")], "must not be negative"),
        ([_ok("a", "0", SPY="1")], "at least one strategy needs a positive weight"),
        ([_ok("a", "1", SPY="1"), _ok("a", "1", TLT="1")], "must be unique: a"),
    ],
)
def test_consolidate_when_weights_invalid_then_consolidation_error(
    outcomes: list[StrategyOutcome], message: str
) -> None:
    with pytest.raises(ConsolidationError, match=message):
        consolidate(outcomes)


def test_strategy_outcome_when_both_or_neither_result_then_value_error() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        StrategyOutcome("a", Decimal(1))


def test_run_strategies_when_one_file_errors_then_it_becomes_a_failure_and_rest_consolidate() -> (
    None
):
    market = market_from_paths({"SPY": random_walk(50, seed=1), "TLT": random_walk(50, seed=2)})
    good = load_strategy('(defsymphony "good" {} (asset "SPY"))', "good.clj")
    short = load_strategy(
        '(defsymphony "short" {} (if (> (moving-average-price "SPY" {:window 200}) 1)\n'
        ' (asset "SPY") (asset "TLT")))',
        "short.clj",
    )
    missing = load_strategy('(defsymphony "missing" {} (asset "QQQ"))', "missing.clj")
    earlier = StrategyOutcome("broken.clj", Decimal("0.5"), error="broken.clj:3:1: unclosed '('")

    result = run_strategies(
        [
            WeightedStrategy(good, Decimal("0.2")),
            WeightedStrategy(short, Decimal("0.3")),
            WeightedStrategy(missing, Decimal("0.4")),
        ],
        market,
        earlier_failures=[earlier],
    )

    assert result.weights == {"SPY": Decimal(1)}
    assert set(result.failures) == {"broken.clj", "short.clj", "missing.clj"}
    assert result.failures["short.clj"].startswith("short.clj:1:32: not enough history")
    assert result.failures["missing.clj"] == "missing.clj:1:27: no price data for symbol 'QQQ'"
    assert [o.name for o in result.outcomes] == [
        "broken.clj",
        "good.clj",
        "short.clj",
        "missing.clj",
    ]


def test_run_strategies_when_every_file_fails_then_all_cash() -> None:
    market = market_from_paths({"SPY": np.array([1.0, 2.0])})
    missing = load_strategy('(defsymphony "m" {} (asset "QQQ"))', "m.clj")

    result = run_strategies([WeightedStrategy(missing, Decimal(1))], market)

    assert result.all_cash is True
    assert dict(result.weights) == {}
