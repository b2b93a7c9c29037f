"""The shipped strategy files: they load, declare their symbols and windows, never crash."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alchemiser_strategy.domain import (
    IndicatorCache,
    Strategy,
    WeightedStrategy,
    evaluate,
    load_strategy,
    required_lookback,
    required_symbols,
    run_strategies,
    to_decimal_weights,
)
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk

FOLDER = Path(__file__).parents[2] / "strategies"
FILES = ["nuclear.clj", "tecl.clj", "klm.clj", "tqqq_ftlt.clj"]


def _load(name: str) -> Strategy:
    return load_strategy((FOLDER / name).read_text(encoding="utf-8"), name)


STRATEGIES = {name: _load(name) for name in FILES}


@pytest.mark.parametrize(
    ("name", "symbols", "max_window"),
    [
        (
            "nuclear.clj",
            "BTAL BWXT EXC IEF IOO LEU NLR OKLO PSQ QQQ SMR SPY SQQQ TLT TQQQ UPRO UVXY VOX VTV"
            " XLF",
            200,
        ),
        ("tecl.clj", "BIL BSV KMLM SPXL SPY SQQQ TECL TQQQ UVXY XLK", 200),
        (
            "klm.clj",
            "FAS KMLM LABU QQQE SOXL SPXL SPY SQQQ SVIX TECL TLT TQQQ UVXY VOOG VOOV VOX VTV XLK"
            " XLP XLY",
            10,
        ),
        ("tqqq_ftlt.clj", "KMLM SPXL SPY SQQQ TECL TLT TQQQ UPRO UVXY XLK", 200),
    ],
)
def test_strategy_file_when_loaded_then_symbols_and_largest_window_are_listed(
    name: str, symbols: str, max_window: int
) -> None:
    strategy = STRATEGIES[name]

    assert strategy.symbols == tuple(symbols.split())
    assert strategy.max_window == max_window
    assert strategy.lookback_bars >= max_window


def test_required_symbols_and_lookback_when_all_files_then_union_and_largest_need() -> None:
    strategies = list(STRATEGIES.values())

    symbols = required_symbols(strategies)

    assert len(symbols) == len(set(symbols)) == 35
    assert symbols == tuple(sorted(symbols))
    assert required_lookback(strategies) == max(s.lookback_bars for s in strategies)
    assert required_lookback(strategies, minimum=400) == 400


def test_required_lookback_when_data_has_exactly_that_many_bars_then_every_strategy_evaluates() -> (
    None
):
    strategies = list(STRATEGIES.values())
    bars = required_lookback(strategies)
    paths = {s: random_walk(bars, seed=i) for i, s in enumerate(required_symbols(strategies))}
    market = market_from_paths(paths)

    for strategy in strategies:
        assert sum(evaluate(strategy, market).weights.values()) == Decimal(1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_strategies_when_random_markets_then_weights_sum_to_one_over_own_symbols(
    seed: int,
) -> None:
    symbols = required_symbols(STRATEGIES.values())
    paths = {
        s: random_walk(300, seed=seed + i, volatility=0.01 + 0.002 * i)
        for i, s in enumerate(symbols)
    }
    market = market_from_paths(paths)
    cache = IndicatorCache(market)

    for strategy in STRATEGIES.values():
        allocation = evaluate(strategy, market, cache=cache)
        assert sum(allocation.weights.values()) == Decimal(1)
        assert all(w > 0 for w in allocation.weights.values())
        assert set(allocation.weights) <= set(strategy.symbols)
        assert allocation.trace

    weights = [Decimal(15), Decimal(35), Decimal(20), Decimal(15)]
    portfolio = run_strategies(
        [WeightedStrategy(s, w) for s, w in zip(STRATEGIES.values(), weights, strict=True)],
        market,
        cache=cache,
    )
    assert sum(portfolio.weights.values()) == Decimal(1)
    assert not portfolio.failures


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text("ABCDEFGHIJ", min_size=1, max_size=4),
        st.fractions(min_value=Fraction(1, 10**6), max_value=10),
        min_size=1,
        max_size=12,
    )
)
def test_to_decimal_weights_when_any_positive_weights_then_exact_sum_of_one(
    weights: dict[str, Fraction],
) -> None:
    result = to_decimal_weights(weights)

    assert sum(result.values()) == Decimal(1)
    assert all(value > 0 for value in result.values())
    total = sum(weights.values())
    for symbol, value in result.items():
        assert abs(Fraction(value) - weights[symbol] / total) <= Fraction(len(weights), 10**8)
