"""Every portfolio operator and comparison, evaluated on small hand-made prices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from alchemiser_strategy.domain.allocation import ConditionTrace, RankingTrace
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.errors import ZeroVolatilityError
from alchemiser_strategy.domain.indicators import cumulative_return, rsi, stdev_return
from alchemiser_strategy.domain.market import IndicatorCache, MarketData
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk

FLAT = [100.0] * 8


def _run(body: str, closes: dict[str, list[float]], index: int | None = None) -> dict[str, Decimal]:
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")
    market = market_from_paths({s: np.array(v) for s, v in closes.items()})
    return dict(evaluate(strategy, market, index=index).weights)


def test_asset_when_evaluated_then_all_weight_on_it() -> None:
    assert _run('(asset "SPY")', {"SPY": FLAT}) == {"SPY": Decimal(1)}


def test_weight_equal_when_three_children_then_thirds_summing_exactly_to_one() -> None:
    weights = _run('(weight-equal [(asset "C") (asset "B") (asset "A")])', {s: FLAT for s in "ABC"})

    # rounding residue goes to the largest weight; equal weights -> alphabetically first.
    assert weights == {
        "A": Decimal("0.33333334"),
        "B": Decimal("0.33333333"),
        "C": Decimal("0.33333333"),
    }
    assert sum(weights.values()) == Decimal(1)


def test_group_when_nested_then_children_share_equally_at_each_level() -> None:
    weights = _run(
        '(group "outer" [(asset "A") (group "inner" [(asset "B") (asset "C")])])',
        {s: FLAT for s in "ABC"},
    )

    assert weights == {"A": Decimal("0.5"), "B": Decimal("0.25"), "C": Decimal("0.25")}


def test_weight_specified_when_nested_and_overlapping_then_weights_add_up_per_symbol() -> None:
    weights = _run(
        '(weight-specified 0.6 (weight-equal [(asset "A") (asset "B")]) 0.4 (asset "A"))',
        {s: FLAT for s in "AB"},
    )

    assert weights == {"A": Decimal("0.7"), "B": Decimal("0.3")}


@pytest.mark.parametrize(
    ("operator", "price", "expected"),
    [
        (">", 100.0, "B"),
        (">", 100.5, "A"),
        (">=", 100.0, "A"),
        (">=", 99.5, "B"),
        ("<", 100.0, "B"),
        ("<", 99.5, "A"),
        ("<=", 100.0, "A"),
        ("<=", 100.5, "B"),
    ],
)
def test_comparison_when_price_against_number_then_strictness_is_respected(
    operator: str, price: float, expected: str
) -> None:
    weights = _run(
        f'(if ({operator} (current-price "X") 100) (asset "A") (asset "B"))',
        {"X": [*FLAT[:-1], price], "A": FLAT, "B": FLAT},
    )

    assert weights == {expected: Decimal(1)}


def test_comparison_when_two_indicators_then_both_are_evaluated() -> None:
    closes = {"X": [1.0, 2, 3, 4, 5, 6, 7, 8], "A": FLAT, "B": FLAT}

    # SMA(3) of X at the last bar is 7, SMA(5) is 6.
    body = (
        '(if (> (moving-average-price "X" {:window 3}) (moving-average-price "X" {:window 5}))'
        ' (asset "A") (asset "B"))'
    )
    assert _run(body, closes) == {"A": Decimal(1)}


def test_if_when_then_block_has_several_nodes_then_they_share_equally() -> None:
    weights = _run('(if (> 2 1) [(asset "A") (asset "B")] [(asset "C")])', {s: FLAT for s in "ABC"})

    assert weights == {"A": Decimal("0.5"), "B": Decimal("0.5")}


def test_filter_when_select_top_then_highest_scores_equal_weighted() -> None:
    closes = {
        "A": [*FLAT[:-1], 110.0],  # +10%
        "B": [*FLAT[:-1], 105.0],  # +5%
        "C": [*FLAT[:-1], 90.0],  # -10%
    }

    body = (
        "(filter (cumulative-return {:window 1}) (select-top 2)"
        ' [(asset "C") (asset "B") (asset "A")])'
    )
    assert _run(body, closes) == {"A": Decimal("0.5"), "B": Decimal("0.5")}


def test_filter_when_select_bottom_then_lowest_score_wins() -> None:
    closes = {"A": [*FLAT[:-1], 110.0], "B": [*FLAT[:-1], 90.0]}

    body = '(filter (cumulative-return {:window 1}) (select-bottom 1) [(asset "A") (asset "B")])'
    assert _run(body, closes) == {"B": Decimal(1)}


def test_filter_when_count_exceeds_children_then_all_are_selected() -> None:
    body = '(filter (rsi {:window 2}) (select-top 5) [(asset "A") (asset "B")])'

    assert _run(body, {"A": FLAT, "B": FLAT}) == {"A": Decimal("0.5"), "B": Decimal("0.5")}


@pytest.mark.parametrize("selector", ["select-top", "select-bottom"])
def test_filter_when_scores_tie_then_alphabetically_first_wins(selector: str) -> None:
    same = [100.0, 101, 99, 102, 98, 103, 97, 104]
    closes = {"ZED": same, "MID": same, "ABC": same}

    body = (
        f'(filter (rsi {{:window 3}}) ({selector} 1) [(asset "ZED") (asset "MID") (asset "ABC")])'
    )
    assert _run(body, closes) == {"ABC": Decimal(1)}


def test_filter_when_group_and_asset_tie_then_label_order_decides() -> None:
    closes = {"B": [100.0, 101, 102, 103, 104, 105, 106, 107]}

    # The group "A-team" holds B all along, so both score the same; "A-team" < "B".
    body = (
        "(filter (cumulative-return {:window 3}) (select-top 1)"
        ' [(asset "B") (group "A-team" [(asset "B")])])'
    )
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")
    allocation = evaluate(strategy, market_from_paths({"B": np.array(closes["B"])}))
    ranking = allocation.trace[0]

    assert isinstance(ranking, RankingTrace)
    assert ranking.selected == ("A-team",)
    assert ranking.scores[0][1] == pytest.approx(ranking.scores[1][1], rel=1e-12)


def test_filter_when_child_is_a_group_then_it_is_scored_by_its_own_performance() -> None:
    switch = [101.0, 99, 101, 101, 99, 99, 101, 101]  # the group holds A when > 100, else B
    a = [100.0, 102, 101, 103, 104, 102, 105, 107]
    b = [50.0, 49, 50, 52, 51, 53, 52, 50]
    other = [100.0, 100, 100, 100, 100, 100, 100, 101]
    body = (
        "(filter (cumulative-return {:window 3}) (select-top 1)"
        ' [(asset "O") (group "G" [(if (> (current-price "S") 100) (asset "A") (asset "B"))])])'
    )
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")
    market = market_from_paths(
        {k: np.array(v) for k, v in {"S": switch, "A": a, "B": b, "O": other}.items()}
    )

    allocation = evaluate(strategy, market)

    # Independent computation: hold A or B decided at the close of t, earn t+1's return.
    equity = [1.0]
    for t in range(len(switch) - 1):
        held = a if switch[t] > 100 else b
        equity.append(equity[-1] * held[t + 1] / held[t])
    expected_score = cumulative_return(np.array(equity), 3)[-1]
    ranking = allocation.trace[0]
    assert isinstance(ranking, RankingTrace)
    scores = dict(ranking.scores)
    assert scores["G"] == pytest.approx(expected_score, rel=1e-12)
    assert scores["O"] == pytest.approx(1.0, rel=1e-12)
    winner = "G" if expected_score > 1.0 else "O"
    assert ranking.selected == (winner,)
    # The winning group contributes its allocation of today (S > 100 -> A).
    assert dict(allocation.weights) == ({"A": Decimal(1)} if winner == "G" else {"O": Decimal(1)})


def test_inverse_volatility_when_assets_then_weights_are_proportional_to_one_over_stdev() -> None:
    # A moves +-1% every day, B +-2%: stdev-return 1 and 2 -> weights 2/3 and 1/3.
    a, b = [100.0], [100.0]
    for day in range(7):
        sign = 1 if day % 2 == 0 else -1
        a.append(a[-1] * (1 + sign * 0.01))
        b.append(b[-1] * (1 + sign * 0.02))

    weights = _run('(weight-inverse-volatility 4 [(asset "A") (asset "B")])', {"A": a, "B": b})

    assert weights == {"A": Decimal("0.66666667"), "B": Decimal("0.33333333")}


def test_inverse_volatility_when_one_child_has_zero_volatility_then_zero_volatility_error() -> None:
    with pytest.raises(ZeroVolatilityError, match=r"t\.clj:2:1: .* FLAT has zero volatility"):
        _run(
            '(weight-inverse-volatility 3 [(asset "FLAT") (asset "MOVE")])',
            {"FLAT": FLAT, "MOVE": [100.0, 101, 100, 101, 100, 101, 100, 101]},
        )


def test_inverse_volatility_when_every_child_is_flat_then_equal_weights() -> None:
    weights = _run(
        '(weight-inverse-volatility 3 [(asset "A") (asset "B")])', {"A": FLAT, "B": FLAT}
    )

    assert weights == {"A": Decimal("0.5"), "B": Decimal("0.5")}


def test_inverse_volatility_when_group_children_then_scored_by_group_returns() -> None:
    x = random_walk(40, seed=5)
    y = random_walk(40, seed=6, volatility=0.03)
    body = '(weight-inverse-volatility 10 [(group "GX" [(asset "X")]) (group "GY" [(asset "Y")])])'
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")

    allocation = evaluate(strategy, market_from_paths({"X": x, "Y": y}))

    inverse_x = 1 / stdev_return(x, 10)[-1]
    inverse_y = 1 / stdev_return(y, 10)[-1]
    expected_x = inverse_x / (inverse_x + inverse_y)
    assert float(allocation.weights["X"]) == pytest.approx(expected_x, abs=1e-8)
    assert sum(allocation.weights.values()) == Decimal(1)


def test_trace_when_evaluated_then_lists_conditions_on_the_decision_path() -> None:
    closes = {"X": [1.0, 2, 3, 4, 5, 6, 7, 8], "A": FLAT, "B": FLAT}
    body = (
        '(if (< (rsi "X" {:window 3}) 50) (asset "A")\n'
        '  (if (> (current-price "X") 7.5) (asset "B") (asset "A")))'
    )
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")

    allocation = evaluate(strategy, market_from_paths({k: np.array(v) for k, v in closes.items()}))

    assert dict(allocation.weights) == {"B": Decimal(1)}
    first, second = allocation.trace
    assert isinstance(first, ConditionTrace)
    assert isinstance(second, ConditionTrace)
    assert (first.expression, first.left, first.right, first.result) == (
        '(< (rsi "X" {:window 3}) 50)',
        100.0,
        50.0,
        False,
    )
    assert (second.position.line, second.position.column) == (3, 7)
    assert second.result is True
    assert 't.clj:3:7: (> (current-price "X") 7.5)' in allocation.explain()
    assert allocation.explain().endswith("allocation: B 1.00000000")


def test_evaluate_when_index_given_then_equals_evaluating_truncated_data() -> None:
    paths = {s: random_walk(120, seed=i) for i, s in enumerate(["X", "Y", "Z", "S"])}
    body = (
        "(filter (rsi {:window 5}) (select-top 1)\n"
        ' [(asset "X") (group "G" [(if (> (rsi "S" {:window 7}) 50) (asset "Y") (asset "Z"))])'
        ' (weight-inverse-volatility 6 [(asset "Y") (asset "S")])])'
    )
    strategy = load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")
    market = market_from_paths(paths)
    cache = IndicatorCache(market)

    for bar in (40, 77, 119):
        full = evaluate(strategy, market, cache=cache, index=bar)
        truncated = MarketData(market.dates[: bar + 1], {s: p[: bar + 1] for s, p in paths.items()})
        alone = evaluate(strategy, truncated)
        assert full.weights == alone.weights
        assert full.as_of == alone.as_of == market.dates[bar]
        assert [e.describe() for e in full.trace] == [e.describe() for e in alone.trace]


def test_evaluate_when_shared_cache_then_each_indicator_is_computed_once() -> None:
    paths = {"X": random_walk(60, seed=1), "A": random_walk(60, seed=2)}
    strategy = load_strategy(
        '(defsymphony "t" {} (if (> (rsi "X" {:window 10}) (rsi "X" {:window 10}))'
        ' (asset "A") (asset "X")))',
        "t.clj",
    )
    market = market_from_paths(paths)
    cache = IndicatorCache(market)

    for bar in range(20, 60):
        evaluate(strategy, market, cache=cache, index=bar)

    assert cache.computations == 1
    np.testing.assert_array_equal(cache.series("X", "rsi", 10), rsi(paths["X"], 10))


def test_evaluate_when_as_of_then_allocation_carries_the_bar_date() -> None:
    strategy = load_strategy('(defsymphony "t" {} (asset "A"))', "t.clj")
    market = market_from_paths({"A": np.array(FLAT)}, end=date(2024, 6, 28))

    assert evaluate(strategy, market).as_of == date(2024, 6, 28)
    assert evaluate(strategy, market, index=-2).as_of == date(2024, 6, 27)
