"""Evaluation errors: missing symbols, short history, bad arguments - always typed, positioned."""

from __future__ import annotations

import numpy as np
import pytest

from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.errors import (
    InsufficientHistoryError,
    MissingSymbolError,
    StrategyEvaluationError,
)
from alchemiser_strategy.domain.market import IndicatorCache
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk

MARKET = market_from_paths({s: random_walk(30, seed=i) for i, s in enumerate(["A", "B", "C"])})


def _evaluate(body: str) -> None:
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")
    evaluate(strategy, MARKET)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '(if (> (rsi "ZZZ" {:window 5}) 50) (asset "A") (asset "B"))',
            "t.clj:2:8: no price data for symbol 'ZZZ'",
        ),
        (
            '(weight-equal [(asset "A") (asset "ZZZ")])',
            "t.clj:2:28: no price data for symbol 'ZZZ'",
        ),
        (
            '(filter (rsi {:window 5}) (select-top 1) [(asset "A") (asset "ZZZ")])',
            "t.clj:2:55: no price data for symbol 'ZZZ'",
        ),
        (
            "(filter (rsi {:window 5}) (select-top 1)\n"
            ' [(asset "A") (group "G" [(if (> (rsi "ZZZ" {:window 2}) 1)\n'
            '  (asset "A") (asset "B"))])])',
            "t.clj:3:34: no price data for symbol 'ZZZ'",
        ),
    ],
)
def test_evaluate_when_symbol_missing_then_missing_symbol_error_at_its_node(
    body: str, message: str
) -> None:
    with pytest.raises(MissingSymbolError) as caught:
        _evaluate(body)

    assert str(caught.value) == message


def test_evaluate_when_missing_symbol_is_in_a_branch_not_taken_then_no_error() -> None:
    _evaluate('(if (> 2 1) (asset "A") (asset "ZZZ"))')


@pytest.mark.parametrize(
    ("body", "position", "fragment"),
    [
        (
            '(if (> (moving-average-price "A" {:window 40}) 1) (asset "A") (asset "B"))',
            "t.clj:2:8",
            '(moving-average-price "A" {:window 40})',
        ),
        (
            '(filter (cumulative-return {:window 30}) (select-top 1) [(asset "A") (asset "B")])',
            "t.clj:2:58",
            "(cumulative-return {:window 30}) of A",
        ),
        (
            '(weight-inverse-volatility 20 [(asset "A")\n'
            ' (group "G" [(if (> (rsi "B" {:window 15}) 50) (asset "A") (asset "B"))])])',
            "t.clj:3:2",
            "(stdev-return {:window 20}) of G",
        ),
    ],
)
def test_evaluate_when_history_too_short_then_insufficient_history_error(
    body: str, position: str, fragment: str
) -> None:
    with pytest.raises(InsufficientHistoryError) as caught:
        _evaluate(body)

    message = str(caught.value)
    assert message.startswith(f"{position}: not enough history for {fragment} on 2024-12-31")
    assert isinstance(caught.value, StrategyEvaluationError)


def test_evaluate_when_symbol_starts_trading_late_then_insufficient_history_not_crash() -> None:
    closes = np.concatenate([np.full(25, np.nan), random_walk(5, seed=1)])
    market = market_from_paths({"NEW": closes, "A": random_walk(30, seed=2)})
    strategy = load_strategy(
        '(defsymphony "t" {} (if (> (rsi "NEW" {:window 10}) 50) (asset "A") (asset "NEW")))',
        "t.clj",
    )

    with pytest.raises(InsufficientHistoryError, match="NEW needs at least 11 bars"):
        evaluate(strategy, market)


def test_evaluate_when_index_out_of_range_then_value_error() -> None:
    strategy = load_strategy('(defsymphony "t" {} (asset "A"))', "t.clj")

    with pytest.raises(ValueError, match="bar index 30 is outside the 30 bars"):
        evaluate(strategy, MARKET, index=30)


def test_evaluate_when_cache_belongs_to_other_market_then_value_error() -> None:
    strategy = load_strategy('(defsymphony "t" {} (asset "A"))', "t.clj")
    other = IndicatorCache(market_from_paths({"A": random_walk(30, seed=9)}))

    with pytest.raises(ValueError, match="different MarketData"):
        evaluate(strategy, MARKET, cache=other)
