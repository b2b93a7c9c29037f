"""Compile parsed s-expressions into a checked :class:`Strategy`.

Grammar (Composer style; ``block`` is one node or a vector of nodes, a vector of several
nodes being an equal-weight block)::

    (defsymphony "name" {meta}? node)
    node := (asset "SYM" "display name"?|nil)
          | (group "name" [node ...])          ; children share the weight equally
          | (weight-equal [node ...])
          | (weight-specified w1 node1 w2 node2 ...) | (weight-specified [w ...] [node ...])
          | (weight-inverse-volatility window [node ...])
          | (filter (indicator {:window n}) (select-top k)|(select-bottom k) [node ...])
          | (if condition block block)          ; the else block is required
          | [node ...]
    condition := (> expr expr) | (< ...) | (>= ...) | (<= ...)
    expr := number | (indicator "SYM" {:window n})   ; current-price takes no window

Specified weights must be positive and add up to exactly 1 (or 100, read as percentages).
Children may also be written inline instead of in a vector. Symbols may use Composer's
``EQUITIES::SPY//USD`` form; they are reduced to the bare ticker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from alchemiser_strategy.domain.analysis import indicator_windows, referenced_symbols, required_bars
from alchemiser_strategy.domain.errors import (
    ArgumentTypeError,
    ArityError,
    SourcePosition,
    UnknownOperatorError,
)
from alchemiser_strategy.domain.indicators import INDICATORS
from alchemiser_strategy.domain.model import (
    Asset,
    Comparison,
    Expression,
    Filter,
    Group,
    If,
    IndicatorRef,
    InverseVolatility,
    NumberLiteral,
    PortfolioNode,
    Strategy,
    WeightEqual,
    WeightSpecified,
)
from alchemiser_strategy.domain.sexpr import (
    Keyword,
    ListForm,
    MapForm,
    Node,
    Number,
    String,
    Symbol,
    VectorForm,
    parse_one,
)

__all__ = ["COMPARISON_OPERATORS", "PORTFOLIO_OPERATORS", "compile_strategy", "load_strategy"]

COMPARISON_OPERATORS = frozenset({">", "<", ">=", "<="})
PORTFOLIO_OPERATORS = frozenset(
    {"asset", "group", "weight-equal", "weight-specified", "weight-inverse-volatility"}
    | {"filter", "if"}
)
_SELECTORS = frozenset({"select-top", "select-bottom"})
_TICKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/]*")
_COMPOSER_TICKER = re.compile(r"^[A-Z_]+::(?P<ticker>[^/]+)(//[A-Z]+)?$")


def load_strategy(text: str, file_name: str) -> Strategy:
    """Parse and compile one strategy file's text; ``file_name`` is used in error positions."""
    return compile_strategy(parse_one(text, file_name), file_name)


def compile_strategy(form: Node, file_name: str) -> Strategy:
    """Compile a parsed ``(defsymphony ...)`` form."""
    head, args = _call(form, "a (defsymphony ...) form")
    if head.name != "defsymphony":
        raise ArgumentTypeError(
            f"expected (defsymphony ...) at the top level, found '{head.name}'", head.position
        )
    if len(args) not in (2, 3):
        raise ArityError(
            f"defsymphony takes a name, an optional meta map and one body, got {len(args)} "
            "arguments",
            head.position,
        )
    name = _string(args[0], "the strategy name")
    meta: dict[str, object] = {}
    if len(args) == 3:
        if not isinstance(args[1], MapForm):
            found = _describe(args[1])
            raise ArgumentTypeError(f"expected a meta map, found {found}", _at(args[1]))
        meta = _meta(args[1])
    body = _portfolio(args[-1])
    symbols = sorted(set(referenced_symbols(body)))
    windows = list(indicator_windows(body))
    return Strategy(
        name=name,
        file_name=file_name,
        meta=MappingProxyType(meta),
        body=body,
        symbols=tuple(symbols),
        max_window=max(windows, default=1),
        lookback_bars=required_bars(body),
    )


# -- portfolio nodes --------------------------------------------------------------------------


def _portfolio(form: Node) -> PortfolioNode:
    if isinstance(form, VectorForm):
        return _block(form)
    head, args = _call(form, "a portfolio node")
    builder = _BUILDERS.get(head.name)
    if builder is not None:
        return builder(head, args, _at(form))
    if head.name in INDICATORS or head.name in COMPARISON_OPERATORS or head.name in _SELECTORS:
        raise ArgumentTypeError(f"'{head.name}' is not a portfolio node", head.position)
    raise UnknownOperatorError(f"unknown operator '{head.name}'", head.position)


def _group(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Group:
    if not args:
        raise ArityError("group takes a name and its children", head.position)
    return Group(_string(args[0], "the group name"), _children(head, args[1:]), position)


def _weight_equal(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> WeightEqual:
    return WeightEqual(_children(head, args), position)


def _inverse_volatility(
    head: Symbol, args: tuple[Node, ...], position: SourcePosition
) -> InverseVolatility:
    if not args:
        raise ArityError("weight-inverse-volatility takes a window and children", head.position)
    window = _positive_int(args[0], "the volatility window")
    return InverseVolatility(window, _children(head, args[1:]), position)


def _if(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> If:
    if len(args) != 3:
        raise ArityError(
            f"if takes a condition, a then-block and an else-block, got {len(args)} arguments",
            head.position,
        )
    return If(_comparison(args[0]), _portfolio(args[1]), _portfolio(args[2]), position)


def _block(vector: VectorForm) -> PortfolioNode:
    if not vector.items:
        raise ArityError("empty block: expected at least one node", vector.position)
    children = tuple(_portfolio(item) for item in vector.items)
    return children[0] if len(children) == 1 else WeightEqual(children, vector.position)


def _children(head: Symbol, args: tuple[Node, ...]) -> tuple[PortfolioNode, ...]:
    items = args[0].items if len(args) == 1 and isinstance(args[0], VectorForm) else args
    if not items:
        raise ArityError(f"{head.name} needs at least one child", head.position)
    return tuple(_portfolio(item) for item in items)


def _asset(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Asset:
    if len(args) not in (1, 2):
        raise ArityError(
            f"asset takes a symbol and an optional name, got {len(args)} arguments", head.position
        )
    symbol = _ticker(args[0])
    display: str | None = None
    if len(args) == 2:
        label = args[1]
        if isinstance(label, String):
            display = label.value
        elif not (isinstance(label, Symbol) and label.name == "nil"):
            raise ArgumentTypeError(
                f"expected the asset's display name (a string or nil), found {_describe(label)}",
                _at(label),
            )
    return Asset(symbol, display, position)


def _weight_specified(
    head: Symbol, args: tuple[Node, ...], position: SourcePosition
) -> WeightSpecified:
    weight_forms: tuple[Node, ...]
    child_forms: tuple[Node, ...]
    if len(args) == 2 and isinstance(args[0], VectorForm) and isinstance(args[1], VectorForm):
        weight_forms, child_forms = args[0].items, args[1].items
        if len(weight_forms) != len(child_forms):
            raise ArityError(
                f"weight-specified has {len(weight_forms)} weights for {len(child_forms)} children",
                head.position,
            )
    else:
        if not args or len(args) % 2:
            raise ArityError(
                f"weight-specified takes pairs of weight and node, got {len(args)} arguments",
                head.position,
            )
        weight_forms, child_forms = args[0::2], args[1::2]
    if not child_forms:
        raise ArityError("weight-specified needs at least one child", head.position)
    weights = [_positive_number(form, "a weight") for form in weight_forms]
    total = sum(weights, Decimal(0))
    if total not in (Decimal(1), Decimal(100)):
        raise ArgumentTypeError(
            f"specified weights add up to {total}; expected exactly 1 (or 100 for percentages)",
            head.position,
        )
    fractions = tuple(Fraction(weight) / Fraction(total) for weight in weights)
    return WeightSpecified(fractions, tuple(_portfolio(f) for f in child_forms), position)


def _filter(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Filter:
    if len(args) < 3:
        raise ArityError(
            f"filter takes a ranking indicator, a selector and children, got {len(args)} arguments",
            head.position,
        )
    ind_head, ind_args = _call(args[0], "a ranking indicator such as (rsi {:window 10})")
    if ind_head.name not in INDICATORS:
        raise UnknownOperatorError(f"unknown indicator '{ind_head.name}'", ind_head.position)
    if ind_args and isinstance(ind_args[0], String):
        raise ArgumentTypeError(
            "a filter's indicator takes no symbol: it is applied to each child", _at(ind_args[0])
        )
    window = _indicator_window(ind_head, ind_args)
    sel_head, sel_args = _call(args[1], "(select-top k) or (select-bottom k)")
    if sel_head.name not in _SELECTORS:
        raise ArgumentTypeError(
            f"expected select-top or select-bottom, found '{sel_head.name}'", sel_head.position
        )
    if len(sel_args) != 1:
        raise ArityError(f"{sel_head.name} takes one count", sel_head.position)
    count = _positive_int(sel_args[0], "the selection count")
    children = _children(head, args[2:])
    return Filter(ind_head.name, window, sel_head.name == "select-top", count, children, position)


# -- conditions and expressions ---------------------------------------------------------------


def _comparison(form: Node) -> Comparison:
    head, args = _call(form, "a comparison such as (> a b)")
    if head.name not in COMPARISON_OPERATORS:
        if head.name in PORTFOLIO_OPERATORS or head.name in INDICATORS:
            raise ArgumentTypeError(
                f"expected a comparison (> < >= <=), found '{head.name}'", head.position
            )
        raise UnknownOperatorError(f"unknown operator '{head.name}'", head.position)
    if len(args) != 2:
        raise ArityError(f"{head.name} takes 2 arguments, got {len(args)}", head.position)
    return Comparison(head.name, _expression(args[0]), _expression(args[1]), _at(form))


def _expression(form: Node) -> Expression:
    if isinstance(form, Number):
        return NumberLiteral(float(form.value), form.text, form.position)
    head, args = _call(form, "a number or an indicator")
    if head.name not in INDICATORS:
        if head.name in PORTFOLIO_OPERATORS or head.name in COMPARISON_OPERATORS:
            raise ArgumentTypeError(
                f"expected a number or an indicator, found '{head.name}'", head.position
            )
        raise UnknownOperatorError(f"unknown indicator '{head.name}'", head.position)
    if not args:
        raise ArityError(f"{head.name} takes a symbol", head.position)
    symbol = _ticker(args[0])
    return IndicatorRef(head.name, symbol, _indicator_window(head, args[1:]), _at(form))


def _indicator_window(head: Symbol, args: tuple[Node, ...]) -> int:
    spec = INDICATORS[head.name]
    if len(args) > 1:
        raise ArityError(f"{head.name} takes at most one option map", head.position)
    if not args:
        if spec.needs_window:
            raise ArityError(f"{head.name} needs a window: {{:window n}}", head.position)
        return 1
    options = args[0]
    if not isinstance(options, MapForm):
        raise ArgumentTypeError(
            f"expected an option map such as {{:window 10}}, found {_describe(options)}",
            _at(options),
        )
    window: int | None = None
    for key, value in options.entries:
        if not isinstance(key, Keyword) or key.name != "window":
            raise ArgumentTypeError(f"unknown option {_describe(key)} (only :window)", _at(key))
        window = _positive_int(value, "the window")
    if window is None:
        if spec.needs_window:
            raise ArityError(f"{head.name} needs a window: {{:window n}}", head.position)
        return 1
    return window if spec.needs_window else 1


# -- small readers ----------------------------------------------------------------------------


def _call(form: Node, expected: str) -> tuple[Symbol, tuple[Node, ...]]:
    if not isinstance(form, ListForm):
        raise ArgumentTypeError(f"expected {expected}, found {_describe(form)}", _at(form))
    if not form.items:
        raise ArgumentTypeError(f"expected {expected}, found an empty list", form.position)
    head = form.items[0]
    if not isinstance(head, Symbol):
        raise ArgumentTypeError(
            f"a list must start with an operator name, found {_describe(head)}", _at(head)
        )
    return head, form.items[1:]


def _string(form: Node, what: str) -> str:
    if not isinstance(form, String):
        raise ArgumentTypeError(f"expected {what} (a string), found {_describe(form)}", _at(form))
    return form.value


def _ticker(form: Node) -> str:
    raw = _string(form, "a symbol").strip()
    composer = _COMPOSER_TICKER.match(raw)
    ticker = composer.group("ticker") if composer else raw
    if not _TICKER.fullmatch(ticker):
        raise ArgumentTypeError(f"invalid symbol {raw!r}", _at(form))
    return ticker.upper()


def _positive_number(form: Node, what: str) -> Decimal:
    if not isinstance(form, Number):
        raise ArgumentTypeError(f"expected {what} (a number), found {_describe(form)}", _at(form))
    value = Decimal(form.value)
    if value <= 0:
        raise ArgumentTypeError(f"{what} must be positive, got {form.text}", form.position)
    return value


def _positive_int(form: Node, what: str) -> int:
    if not isinstance(form, Number) or not isinstance(form.value, int):
        raise ArgumentTypeError(
            f"expected {what} (a whole number), found {_describe(form)}", _at(form)
        )
    if form.value < 1:
        raise ArgumentTypeError(f"{what} must be at least 1, got {form.value}", form.position)
    return form.value


def _meta(form: MapForm) -> dict[str, object]:
    meta: dict[str, object] = {}
    for key, value in form.entries:
        if not isinstance(key, Keyword):
            raise ArgumentTypeError(f"meta keys must be keywords, found {_describe(key)}", _at(key))
        meta[key.name] = _plain(value)
    return meta


def _plain(form: Node) -> object:
    if isinstance(form, String):
        return form.value
    if isinstance(form, Number):
        return form.value
    if isinstance(form, Keyword):
        return f":{form.name}"
    if isinstance(form, Symbol):
        return form.name
    raise ArgumentTypeError(f"unsupported meta value {_describe(form)}", _at(form))


def _at(form: Node) -> SourcePosition:
    return form.position


def _describe(form: Node) -> str:
    if isinstance(form, ListForm):
        head = form.items[0] if form.items else None
        return f"({head.name} ...)" if isinstance(head, Symbol) else "a list"
    describers: dict[type, Callable[[Any], str]] = {
        Symbol: lambda f: f"the name '{f.name}'",
        Keyword: lambda f: f"the keyword ':{f.name}'",
        String: lambda f: f'the string "{f.value}"',
        Number: lambda f: f"the number {f.text}",
        VectorForm: lambda f: "a vector",
        MapForm: lambda f: "a map",
    }
    return describers[type(form)](form)


_BUILDERS: dict[str, Callable[[Symbol, tuple[Node, ...], SourcePosition], PortfolioNode]] = {
    "asset": _asset,
    "group": _group,
    "weight-equal": _weight_equal,
    "weight-specified": _weight_specified,
    "weight-inverse-volatility": _inverse_volatility,
    "filter": _filter,
    "if": _if,
}
