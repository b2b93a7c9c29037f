"""The forms real strategy files use: new indicators, ``=``, bare files, weights as written.

Each test here backs a statement of ``docs/strategy-dsl.md``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.errors import (
    ArgumentTypeError,
    ArityError,
    InsufficientHistoryError,
    UnknownOperatorError,
)
from alchemiser_strategy.domain.indicators import (
    INDICATORS,
    FloatArray,
    percentage_price_oscillator,
    percentage_price_oscillator_signal,
    stdev_price,
)
from alchemiser_strategy.domain.market import IndicatorCache
from alchemiser_strategy.domain.model import (
    Filter,
    If,
    IndicatorRef,
    PortfolioNode,
    Strategy,
    WeightEqual,
    WeightSpecified,
)
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk

PPO = '(percentage-price-oscillator "X" {:short-window 3, :long-window 6})'
PPO_SIGNAL = (
    '(percentage-price-oscillator-signal "X" {:short-window 3, :long-window 6, :smooth-window 4})'
)


def _strategy(body: str) -> Strategy:
    return load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")


def _body(body: str) -> PortfolioNode:
    return _strategy(body).body


def _weights(body: str, closes: dict[str, FloatArray]) -> dict[str, Decimal]:
    return dict(evaluate(_strategy(body), market_from_paths(closes)).weights)


# -- stdev-price -------------------------------------------------------------------------------


def test_stdev_price_when_in_condition_then_compared_in_price_units() -> None:
    x = np.array([10.0, 12, 10, 12, 10, 12])  # population std of the last 4 closes: 1.0
    body = '(if (> (stdev-price "X" {:window 4}) 0.99) (asset "A") (asset "B"))'

    assert _weights(body, {"X": x, "A": x, "B": x}) == {"A": Decimal(1)}
    assert stdev_price(x, 4)[-1] == pytest.approx(1.0)


def test_stdev_price_when_filter_then_children_ranked_by_price_std() -> None:
    calm = np.linspace(100.0, 101.0, 10)
    wild = np.array([100.0, 110, 90, 110, 90, 110, 90, 110, 90, 100])
    body = '(filter (stdev-price {:window 5}) (select-bottom 1) [(asset "WILD") (asset "CALM")])'

    assert _weights(body, {"WILD": wild, "CALM": calm}) == {"CALM": Decimal(1)}


# -- percentage-price-oscillator and its signal ------------------------------------------------


def test_ppo_when_in_condition_then_value_is_the_indicator_at_the_bar() -> None:
    x = random_walk(60, seed=11)
    node = _body(f'(if (> {PPO} 0) (asset "A") (asset "B"))')

    assert isinstance(node, If)
    assert isinstance(node.condition.left, IndicatorRef)
    assert node.condition.left.args == (3, 6)
    expected = "A" if percentage_price_oscillator(x, 3, 6)[-1] > 0 else "B"
    assert _weights(f'(if (> {PPO} 0) (asset "A") (asset "B"))', {"X": x, "A": x, "B": x}) == {
        expected: Decimal(1)
    }


def test_ppo_signal_when_in_condition_then_compares_against_the_ppo() -> None:
    x = random_walk(60, seed=12)
    body = f'(if (> {PPO_SIGNAL} {PPO}) (asset "A") (asset "B"))'
    above = (
        percentage_price_oscillator_signal(x, 3, 6, 4)[-1]
        > percentage_price_oscillator(x, 3, 6)[-1]
    )

    assert _weights(body, {"X": x, "A": x, "B": x}) == {("A" if above else "B"): Decimal(1)}


def test_ppo_when_written_as_composer_unimplemented_call_then_same_indicator() -> None:
    direct = _body(f'(if (< {PPO} 0) (asset "A") (asset "B"))')
    wrapped = _body(
        "(if (< ((unimplemented :percentage-price-oscillator) "
        '"X" {:short-window 3, :long-window 6}) 0) (asset "A") (asset "B"))'
    )

    assert isinstance(direct, If)
    assert isinstance(wrapped, If)
    assert direct.condition.render() == wrapped.condition.render()


def test_ppo_when_filter_then_ranked_with_all_three_windows() -> None:
    node = _body(
        "(filter (percentage-price-oscillator-signal {:short-window 12, :long-window 26, "
        ':smooth-window 9}) (select-top 1) [(asset "A") (asset "B")])'
    )

    assert isinstance(node, Filter)
    assert node.args == (12, 26, 9)
    assert node.render().startswith(
        "(filter (percentage-price-oscillator-signal {:short-window 12, :long-window 26, "
        ":smooth-window 9}) (select-top 1))"
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            "{:short-window 12}",
            ArityError,
            "percentage-price-oscillator needs {:short-window s, :long-window l}",
        ),
        (
            "{:short-window 26, :long-window 12}",
            ArgumentTypeError,
            ":short-window 26 must be below :long-window 12",
        ),
        (
            "{:short-window 12, :long-window 26, :smooth-window 9}",
            ArgumentTypeError,
            "unknown option the keyword ':smooth-window' for percentage-price-oscillator "
            "(takes :short-window :long-window)",
        ),
        ("{:window 10}", ArgumentTypeError, "unknown option the keyword ':window'"),
    ],
)
def test_ppo_when_options_wrong_then_error_names_the_expected_ones(
    options: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        _body(f'(if (> (percentage-price-oscillator "X" {options}) 0) (asset "A") (asset "B"))')


def test_ppo_when_history_shorter_than_long_window_then_insufficient_history() -> None:
    x = random_walk(5, seed=1)
    with pytest.raises(InsufficientHistoryError, match="needs at least 6 bars"):
        _weights(f'(if (> {PPO} 0) (asset "A") (asset "B"))', {"X": x, "A": x, "B": x})


def test_current_price_when_window_given_then_accepted_and_ignored() -> None:
    node = _body('(if (> (current-price "SPY" {:window 5}) 1) (asset "A") (asset "B"))')

    assert isinstance(node, If)
    assert isinstance(node.condition.left, IndicatorRef)
    assert node.condition.left.args == ()
    assert node.condition.left.render() == '(current-price "SPY")'


# -- the = comparison --------------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "expected"), [("100", "A"), ("100.5", "B")])
def test_equals_when_values_are_equal_then_then_branch(threshold: str, expected: str) -> None:
    x = np.full(5, 100.0)
    body = f'(if (= (current-price "X") {threshold}) (asset "A") (asset "B"))'

    assert _weights(body, {"X": x, "A": x, "B": x}) == {expected: Decimal(1)}


# -- files without defsymphony -----------------------------------------------------------------


def test_load_when_file_is_a_bare_node_then_named_after_the_file() -> None:
    strategy = load_strategy(
        ';; no header\n(if (> (rsi "SPY" {:window 2}) 50) (asset "A") (asset "B"))',
        "strategies/simple_rsi.clj",
    )

    assert strategy.name == "simple_rsi"
    assert dict(strategy.meta) == {}
    assert isinstance(strategy.body, If)
    assert strategy.symbols == ("A", "B", "SPY")


def test_load_when_file_is_a_bare_vector_then_equal_weight_block() -> None:
    strategy = load_strategy('[(asset "A") (asset "B")]', "pair.clj")

    assert strategy.name == "pair"
    assert isinstance(strategy.body, WeightEqual)


# -- unknown names -----------------------------------------------------------------------------


def test_unknown_indicator_when_compiled_then_error_lists_every_known_indicator() -> None:
    with pytest.raises(UnknownOperatorError) as caught:
        _body('(if (> (stdev-prise "X" {:window 5}) 1) (asset "A") (asset "B"))')

    message = str(caught.value)
    assert message.startswith("t.clj:2:9: unknown indicator 'stdev-prise' (known: ")
    for name in INDICATORS:
        assert name in message


# -- weight-specified as traders write it ------------------------------------------------------


@pytest.mark.parametrize(
    "weights",
    [
        ("0.6", "0.4000000000000001"),  # 1.0000000000000001
        ("0.33333333333333331", "0.6666666666666666"),  # 0.99999999999999991
        ("60", "40.0000000001"),  # 100.0000000001 (percentages)
    ],
)
def test_weight_specified_when_sum_is_one_up_to_float_noise_then_normalised(
    weights: tuple[str, str],
) -> None:
    node = _body(f'(weight-specified {weights[0]} (asset "A") {weights[1]} (asset "B"))')

    assert isinstance(node, WeightSpecified)
    assert sum(node.weights) == 1
    total = Decimal(weights[0]) + Decimal(weights[1])
    assert node.weights[0] == Fraction(Decimal(weights[0])) / Fraction(total)


def test_weight_specified_when_sum_is_off_by_more_than_noise_then_error() -> None:
    with pytest.raises(ArgumentTypeError, match=r"add up to 1\.000001; expected 1"):
        _body('(weight-specified 0.5 (asset "A") 0.500001 (asset "B"))')


def test_weight_specified_when_zero_weight_then_branch_dropped_and_not_fetched() -> None:
    strategy = _strategy('(weight-specified 1 (asset "A") 0 (asset "B"))')

    assert isinstance(strategy.body, WeightSpecified)
    assert strategy.body.weights == (Fraction(1),)
    assert strategy.symbols == ("A",)
    x = np.full(3, 10.0)
    assert _weights('(weight-specified 1 (asset "A") 0 (asset "B"))', {"A": x}) == {"A": Decimal(1)}


def test_weight_specified_when_zero_weight_child_is_invalid_then_still_a_compile_error() -> None:
    with pytest.raises(UnknownOperatorError, match="unknown operator 'bogus'"):
        _body('(weight-specified 1 (asset "A") 0 (bogus "B"))')


def test_weight_specified_when_every_weight_zero_then_error() -> None:
    with pytest.raises(ArgumentTypeError, match="add up to 0; expected 1"):
        _body('(weight-specified 0 (asset "A") 0 (asset "B"))')


# -- duplicates count once ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '(weight-equal [(asset "A") (asset "A") (asset "B")])',
        '(group "g" [(asset "A") (asset "B") (asset "EQUITIES::A//USD")])',
        '(if (> 1 0) [(asset "A") (asset "A") (asset "B")] [(asset "B")])',
    ],
)
def test_weight_equal_when_symbol_listed_twice_then_counted_once(body: str) -> None:
    x = np.full(3, 10.0)

    assert _weights(body, {"A": x, "B": x}) == {"A": Decimal("0.5"), "B": Decimal("0.5")}


def test_filter_when_candidate_listed_twice_then_counted_once() -> None:
    rising = np.linspace(10.0, 20.0, 10)
    falling = np.linspace(20.0, 10.0, 10)
    flat = np.full(10, 15.0)
    body = (
        "(filter (cumulative-return {:window 5}) (select-top 2)"
        ' [(asset "UP") (asset "UP") (asset "FLAT") (asset "DOWN")])'
    )

    weights = _weights(body, {"UP": rising, "FLAT": flat, "DOWN": falling})

    assert weights == {"FLAT": Decimal("0.5"), "UP": Decimal("0.5")}


def test_weight_specified_when_symbol_listed_twice_then_weights_add_up() -> None:
    x = np.full(3, 10.0)
    body = '(weight-specified 0.25 (asset "A") 0.25 (asset "A") 0.5 (asset "B"))'

    assert _weights(body, {"A": x, "B": x}) == {"A": Decimal("0.5"), "B": Decimal("0.5")}


# -- groups as synthetic assets: one simulation per distinct sub-tree --------------------------

SUB_TREE = '[(if (> (rsi "X" {:window 5}) 50) (asset "A") (asset "B"))]'


def test_group_series_when_same_sub_tree_appears_twice_then_simulated_once() -> None:
    paths = {s: random_walk(80, seed=i) for i, s in enumerate(("X", "A", "B", "C"))}
    market = market_from_paths(paths)
    once = _strategy(
        f'(filter (cumulative-return {{:window 5}}) (select-top 1) [(group "one" {SUB_TREE}) '
        '(asset "C")])'
    )
    twice = _strategy(
        f'(weight-equal [(filter (cumulative-return {{:window 5}}) (select-top 1) [(group "one" '
        f'{SUB_TREE}) (asset "C")]) (filter (stdev-return {{:window 5}}) (select-bottom 1) '
        f'[(group "renamed" {SUB_TREE}) (asset "C")])])'
    )
    cache_once, cache_twice = IndicatorCache(market), IndicatorCache(market)

    evaluate(once, market, cache=cache_once)
    evaluate(twice, market, cache=cache_twice)

    # the group's performance series (the expensive part) is simulated once in both cases
    assert cache_once.simulations == 1
    assert cache_twice.simulations == 1
    assert cache_twice.computations == cache_once.computations + 2  # stdev of C and of the group
    first, second = once.body, twice.body
    assert isinstance(first, Filter)
    assert isinstance(second, WeightEqual)
    renamed = second.children[1]
    assert isinstance(renamed, Filter)
    assert once.structure_keys[first.children[0]] == twice.structure_keys[renamed.children[0]]
