"""Compiling s-expressions into strategy nodes, and the static facts about a strategy."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.errors import (
    ArgumentTypeError,
    ArityError,
    StrategyEvaluationError,
    StrategySyntaxError,
    UnknownOperatorError,
)
from alchemiser_strategy.domain.model import (
    Asset,
    Filter,
    Group,
    If,
    IndicatorRef,
    InverseVolatility,
    NumberLiteral,
    WeightEqual,
    WeightSpecified,
)


def _load(body: str) -> object:
    return load_strategy(f'(defsymphony "t" {{}} {body})', "t.clj").body


def test_load_when_full_header_then_name_meta_and_body() -> None:
    strategy = load_strategy(
        '(defsymphony "Demo" {:asset-class "EQUITIES", :rebalance-frequency :daily, :n 2}\n'
        '  (asset "SPY"))',
        "demo.clj",
    )

    assert strategy.name == "Demo"
    assert strategy.file_name == "demo.clj"
    assert dict(strategy.meta) == {
        "asset-class": "EQUITIES",
        "rebalance-frequency": ":daily",
        "n": 2,
    }
    assert isinstance(strategy.body, Asset)


def test_load_when_meta_map_omitted_then_accepted() -> None:
    strategy = load_strategy('(defsymphony "Demo" (asset "SPY"))', "demo.clj")

    assert dict(strategy.meta) == {}


def test_asset_when_composer_ticker_form_and_display_name_then_bare_ticker() -> None:
    node = _load('(asset "EQUITIES::spy//USD" "SPDR S&P 500")')

    assert isinstance(node, Asset)
    assert (node.symbol, node.name) == ("SPY", "SPDR S&P 500")


def test_asset_when_name_is_nil_then_no_display_name() -> None:
    node = _load('(asset "SMR" nil)')

    assert isinstance(node, Asset)
    assert node.name is None


def test_group_when_children_in_vector_then_group_node() -> None:
    node = _load('(group "G" [(asset "A") (asset "B")])')

    assert isinstance(node, Group)
    assert node.name == "G"
    assert [c.symbol for c in node.children if isinstance(c, Asset)] == ["A", "B"]


def test_weight_equal_when_children_inline_then_same_as_vector() -> None:
    inline = _load('(weight-equal (asset "A") (asset "B"))')
    vector = _load('(weight-equal [(asset "A") (asset "B")])')

    assert isinstance(inline, WeightEqual)
    assert isinstance(vector, WeightEqual)
    assert len(inline.children) == len(vector.children) == 2


@pytest.mark.parametrize(
    "body",
    [
        '(weight-specified 0.75 (asset "A") 0.25 (asset "B"))',
        '(weight-specified [0.75 0.25] [(asset "A") (asset "B")])',
        '(weight-specified 75 (asset "A") 25 (asset "B"))',
    ],
)
def test_weight_specified_when_any_supported_form_then_exact_fractions(body: str) -> None:
    node = _load(body)

    assert isinstance(node, WeightSpecified)
    assert node.weights == (Fraction(3, 4), Fraction(1, 4))


def test_weight_inverse_volatility_when_window_and_children_then_node() -> None:
    node = _load('(weight-inverse-volatility 14 [(asset "A") (group "G" [(asset "B")])])')

    assert isinstance(node, InverseVolatility)
    assert node.window == 14
    assert isinstance(node.children[1], Group)


def test_filter_when_bottom_selector_then_fields_are_set() -> None:
    node = _load('(filter (max-drawdown {:window 20}) (select-bottom 2) [(asset "A") (asset "B")])')

    assert isinstance(node, Filter)
    assert (node.indicator, node.args, node.select_top, node.count) == (
        "max-drawdown",
        (20,),
        False,
        2,
    )


def test_if_when_blocks_hold_several_nodes_then_block_is_equal_weight() -> None:
    node = _load('(if (>= (rsi "SPY" {:window 10}) -2.5) [(asset "A") (asset "B")] [(asset "C")])')

    assert isinstance(node, If)
    assert node.condition.operator == ">="
    left, right = node.condition.left, node.condition.right
    assert isinstance(left, IndicatorRef)
    assert (left.indicator, left.symbol, left.args) == ("rsi", "SPY", (10,))
    assert isinstance(right, NumberLiteral)
    assert right.value == -2.5
    assert isinstance(node.then, WeightEqual)
    assert isinstance(node.otherwise, Asset)


def test_current_price_when_no_window_then_no_args() -> None:
    node = _load('(if (> (current-price "SPY") 1) (asset "A") (asset "B"))')

    assert isinstance(node, If)
    assert isinstance(node.condition.left, IndicatorRef)
    assert node.condition.left.args == ()


def test_static_facts_when_compiled_then_symbols_max_window_and_lookback() -> None:
    strategy = load_strategy(
        '(defsymphony "t" {}\n'
        ' (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))\n'
        "   (filter (cumulative-return {:window 60}) (select-top 1)\n"
        '     [(asset "QQQ") (group "G" [(if (< (rsi "TLT" {:window 20}) 50)\n'
        '                                  (asset "BIL") (asset "TLT"))])])\n'
        '   (weight-inverse-volatility 14 [(asset "XLK") (asset "BIL")])))',
        "t.clj",
    )

    assert strategy.symbols == ("BIL", "QQQ", "SPY", "TLT", "XLK")
    assert strategy.max_window == 200
    # group G needs RSI(20) converged (201 bars), then 60 more bars of its own returns.
    assert strategy.lookback_bars == 201 + 61 - 1


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ('(weight-foo [(asset "A")])', UnknownOperatorError, "2:2: unknown operator 'weight-foo'"),
        (
            '(if (== (rsi "A" {:window 2}) 1) (asset "A") (asset "B"))',
            UnknownOperatorError,
            "2:6: unknown operator '==' (comparisons: > < >= <= =)",
        ),
        (
            '(if (> (rsx "A" {:window 2}) 1) (asset "A") (asset "B"))',
            UnknownOperatorError,
            "2:9: unknown indicator 'rsx'",
        ),
        (
            '(filter (rsx {:window 2}) (select-top 1) [(asset "A")])',
            UnknownOperatorError,
            "2:10: unknown indicator 'rsx'",
        ),
        ('(if (> 1 2) (asset "A"))', ArityError, "2:2: if takes a condition, a then-block and"),
        ('(if (> 1) (asset "A") (asset "B"))', ArityError, "2:6: > takes 2 arguments, got 1"),
        ("(asset)", ArityError, "2:2: asset takes a symbol and an optional name"),
        ('(asset "A" "a" "x")', ArityError, "2:2: asset takes a symbol"),
        ("(weight-equal)", ArityError, "2:2: weight-equal needs at least one child"),
        ("(weight-equal [])", ArityError, "2:2: weight-equal needs at least one child"),
        ("(group)", ArityError, "2:2: group takes a name and its children"),
        ('(if (> 1 2) [] (asset "B"))', ArityError, "2:13: empty block"),
        ('(weight-specified 0.5 (asset "A") 0.5)', ArityError, "2:2: weight-specified takes pairs"),
        (
            '(weight-specified [0.5] [(asset "A") (asset "B")])',
            ArityError,
            "2:2: weight-specified has 1 weights for 2 children",
        ),
        (
            '(if (> (rsi "A") 1) (asset "A") (asset "B"))',
            ArityError,
            "2:9: rsi needs a window: {:window n}",
        ),
        (
            '(filter (rsi {:window 2}) (select-top) [(asset "A")])',
            ArityError,
            "2:28: select-top takes one count",
        ),
        ("(filter (rsi {:window 2}))", ArityError, "2:2: filter takes a ranking indicator"),
        ("(asset 5)", ArgumentTypeError, "2:8: expected a symbol (a string), found the number 5"),
        ('(asset "A B")', ArgumentTypeError, "2:8: invalid symbol 'A B'"),
        ('(asset "A" 5)', ArgumentTypeError, "2:12: expected the asset's display name"),
        (
            '(if (> (rsi "A" {:window 2.5}) 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:26: expected the window (a whole number), found the number 2.5",
        ),
        (
            '(if (> (rsi "A" {:window 0}) 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:26: the window must be at least 1, got 0",
        ),
        (
            '(if (> (rsi "A" {:period 3}) 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:18: unknown option the keyword ':period' for rsi (takes :window)",
        ),
        (
            '(if (> (rsi "A" 10) 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:17: expected an option map such as {:window 10}, found the number 10",
        ),
        (
            '(filter (rsi "A" {:window 2}) (select-top 1) [(asset "A")])',
            ArgumentTypeError,
            "2:14: a filter's indicator takes no symbol",
        ),
        (
            '(filter (rsi {:window 2}) (top 1) [(asset "A")])',
            ArgumentTypeError,
            "2:28: expected select-top or select-bottom, found 'top'",
        ),
        (
            '(filter (rsi {:window 2}) (select-top 0) [(asset "A")])',
            ArgumentTypeError,
            "2:39: the selection count must be at least 1, got 0",
        ),
        ('(group "g" [(> 1 2)])', ArgumentTypeError, "2:14: '>' is not a portfolio node"),
        (
            '(if (asset "A") (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:6: expected a comparison (> < >= <= =), found 'asset'",
        ),
        (
            '(if (> (asset "A") 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            "2:9: expected a number or an indicator, found 'asset'",
        ),
        (
            '(if (> "A" 1) (asset "A") (asset "B"))',
            ArgumentTypeError,
            '2:8: expected a number or an indicator, found the string "A"',
        ),
        ('"just a string"', ArgumentTypeError, "2:1: expected a portfolio node"),
        ("((asset) 1)", ArgumentTypeError, "2:2: a list must start with an operator name"),
        (
            '(weight-specified 0.5 (asset "A") 0.6 (asset "B"))',
            ArgumentTypeError,
            "2:2: specified weights add up to 1.1; expected 1 (or 100 for percentages)",
        ),
        (
            '(weight-specified -0.5 (asset "A") 1.5 (asset "B"))',
            ArgumentTypeError,
            "2:19: a weight must not be negative, got -0.5",
        ),
        (
            '(weight-inverse-volatility "14" [(asset "A")])',
            ArgumentTypeError,
            "2:28: expected the volatility window (a whole number)",
        ),
    ],
)
def test_load_when_body_is_invalid_then_typed_error_with_position(
    body: str, error: type[StrategyEvaluationError], message: str
) -> None:
    with pytest.raises(error) as caught:
        load_strategy(f'(defsymphony "t" {{}}\n{body})', "t.clj")

    assert str(caught.value).startswith(f"t.clj:{message}")


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            '(strategy "x" (asset "A"))',
            UnknownOperatorError,
            "t.clj:1:2: unknown operator 'strategy' (portfolio nodes: asset, filter, group, if,",
        ),
        ('(defsymphony 5 {} (asset "A"))', ArgumentTypeError, "t.clj:1:14: expected the strategy"),
        ('(defsymphony "x")', ArityError, "t.clj:1:2: defsymphony takes a name"),
        ('(defsymphony "x" [1] (asset "A"))', ArgumentTypeError, "t.clj:1:18: expected a meta map"),
        ('(defsymphony "x" {"k" 1} (asset "A"))', ArgumentTypeError, "t.clj:1:19: meta keys"),
        ("[1 2]", ArgumentTypeError, "t.clj:1:2: expected a portfolio node, found the number 1"),
    ],
)
def test_load_when_header_is_invalid_then_typed_error_with_position(
    text: str, error: type[StrategyEvaluationError], message: str
) -> None:
    with pytest.raises(error) as caught:
        load_strategy(text, "t.clj")

    assert str(caught.value).startswith(message)


def test_load_when_text_is_malformed_then_syntax_error_not_evaluation_error() -> None:
    with pytest.raises(StrategySyntaxError, match=r"^t\.clj:1:1: unclosed '\('"):
        load_strategy('(defsymphony "x" {} (asset "A")', "t.clj")


def test_weights_when_percentages_then_decimal_sum_must_be_exact() -> None:
    node = _load('(weight-specified 33.3 (asset "A") 66.7 (asset "B"))')

    assert isinstance(node, WeightSpecified)
    assert node.weights == (Fraction(Decimal("0.333")), Fraction(Decimal("0.667")))
