"""Compile parsed s-expressions into a checked :class:`Strategy`.

Grammar (Composer style; ``block`` is one node or a vector of nodes, a vector of several
nodes being an equal-weight block)::

    (defsymphony "name" {meta}? node) | node     ; a bare node is named after its file
    node := (asset "SYM" "display name"?|nil)
          | (group "name" [node ...])          ; children share the weight equally
          | (weight-equal [node ...])
          | (weight-specified w1 node1 w2 node2 ...) | (weight-specified [w ...] [node ...])
          | (weight-inverse-volatility window [node ...])
          | (filter (indicator {:window n}) (select-top k)|(select-bottom k) [node ...])
          | (if condition block block)          ; the else block is required
          | [node ...]
    condition := (> expr expr) | (< ...) | (>= ...) | (<= ...) | (= ...)
    expr := number | (indicator "SYM" {options}) | ((unimplemented :indicator) "SYM" {options})
    options := {:window n} | {:short-window s :long-window l} (PPO)
             | {:short-window s :long-window l :smooth-window m} (PPO signal); current-price: none

Specified weights must be >= 0 and add up to 1 (or 100, read as percentages) within
:data:`WEIGHT_SUM_TOLERANCE` (relative); they are normalised by their sum, and a child with a
zero weight is compiled (its errors are reported) and then dropped. In ``group``,
``weight-equal``, ``weight-inverse-volatility`` and ``filter`` children, an ``asset`` whose
symbol already appeared among the same node's children is dropped: a symbol counts once.
Children may also be written inline instead of in a vector. Symbols may use Composer's
``EQUITIES::SPY//USD`` form; they are reduced to the bare ticker.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from types import MappingProxyType

from alchemiser_strategy.domain.analysis import (
    indicator_windows,
    referenced_symbols,
    required_bars,
    structure_keys,
)
from alchemiser_strategy.domain.errors import (
    ArgumentTypeError,
    ArityError,
    SourcePosition,
    UnknownOperatorError,
)
from alchemiser_strategy.domain.forms import (
    at,
    call,
    describe,
    meta_map,
    positive_int,
    string_value,
    ticker,
    weight_value,
)
from alchemiser_strategy.domain.indicators import INDICATORS, IndicatorArgs, IndicatorSpec
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

__all__ = [
    "COMPARISON_OPERATORS",
    "PORTFOLIO_OPERATORS",
    "WEIGHT_SUM_TOLERANCE",
    "compile_strategy",
    "load_strategy",
]

COMPARISON_OPERATORS = frozenset({">", "<", ">=", "<=", "="})
WEIGHT_SUM_TOLERANCE = Decimal("1e-9")
"""Relative distance from 1 (or 100) within which specified weights count as summing to it."""
PORTFOLIO_OPERATORS = frozenset(
    {"asset", "group", "weight-equal", "weight-specified", "weight-inverse-volatility"}
    | {"filter", "if"}
)
_SELECTORS = frozenset({"select-top", "select-bottom"})
_WEIGHT_SUMS = (Decimal(1), Decimal(100))
_UNIMPLEMENTED = "unimplemented"  # Composer exports some indicators as ((unimplemented :name) ...)


def load_strategy(text: str, file_name: str) -> Strategy:
    """Parse and compile one strategy file's text; ``file_name`` is used in error positions."""
    return compile_strategy(parse_one(text, file_name), file_name)


def compile_strategy(form: Node, file_name: str) -> Strategy:
    """Compile a parsed ``(defsymphony ...)`` form, or a bare portfolio node.

    A bare node (e.g. a file holding just ``(if ...)``) is named after the file, without its
    directory and ``.clj`` suffix, and has no meta.
    """
    if isinstance(form, VectorForm) or (
        isinstance(form, ListForm)
        and form.items
        and isinstance(form.items[0], Symbol)
        and form.items[0].name != "defsymphony"
    ):
        return _strategy(PurePath(file_name).stem, file_name, {}, _portfolio(form))
    head, args = call(form, "a (defsymphony ...) form or a portfolio node")
    if len(args) not in (2, 3):
        raise ArityError(
            f"defsymphony takes a name, an optional meta map and one body, got {len(args)} "
            "arguments",
            head.position,
        )
    name = string_value(args[0], "the strategy name")
    meta: dict[str, object] = {}
    if len(args) == 3:
        if not isinstance(args[1], MapForm):
            found = describe(args[1])
            raise ArgumentTypeError(f"expected a meta map, found {found}", at(args[1]))
        meta = meta_map(args[1])
    return _strategy(name, file_name, meta, _portfolio(args[-1]))


def _strategy(name: str, file_name: str, meta: dict[str, object], body: PortfolioNode) -> Strategy:
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
        structure_keys=MappingProxyType(structure_keys(body)),
    )


# -- portfolio nodes --------------------------------------------------------------------------


def _portfolio(form: Node) -> PortfolioNode:
    if isinstance(form, VectorForm):
        return _block(form)
    head, args = call(form, "a portfolio node")
    builder = _BUILDERS.get(head.name)
    if builder is not None:
        return builder(head, args, at(form))
    if head.name in INDICATORS or head.name in COMPARISON_OPERATORS or head.name in _SELECTORS:
        raise ArgumentTypeError(f"'{head.name}' is not a portfolio node", head.position)
    raise UnknownOperatorError(
        f"unknown operator '{head.name}' (portfolio nodes: {', '.join(sorted(_BUILDERS))})",
        head.position,
    )


def _group(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Group:
    if not args:
        raise ArityError("group takes a name and its children", head.position)
    return Group(string_value(args[0], "the group name"), _children(head, args[1:]), position)


def _weight_equal(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> WeightEqual:
    return WeightEqual(_children(head, args), position)


def _inverse_volatility(
    head: Symbol, args: tuple[Node, ...], position: SourcePosition
) -> InverseVolatility:
    if not args:
        raise ArityError("weight-inverse-volatility takes a window and children", head.position)
    window = positive_int(args[0], "the volatility window")
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
    children = _unique_assets(tuple(_portfolio(item) for item in vector.items))
    return children[0] if len(children) == 1 else WeightEqual(children, vector.position)


def _children(head: Symbol, args: tuple[Node, ...]) -> tuple[PortfolioNode, ...]:
    """The children of an equal-weight, inverse-volatility or filter node, each symbol once."""
    items = args[0].items if len(args) == 1 and isinstance(args[0], VectorForm) else args
    if not items:
        raise ArityError(f"{head.name} needs at least one child", head.position)
    return _unique_assets(tuple(_portfolio(item) for item in items))


def _unique_assets(children: tuple[PortfolioNode, ...]) -> tuple[PortfolioNode, ...]:
    """Drop an ``asset`` whose symbol already appeared among ``children`` (first one kept)."""
    seen: set[str] = set()
    kept: list[PortfolioNode] = []
    for child in children:
        if isinstance(child, Asset):
            if child.symbol in seen:
                continue
            seen.add(child.symbol)
        kept.append(child)
    return tuple(kept)


def _asset(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Asset:
    if len(args) not in (1, 2):
        raise ArityError(
            f"asset takes a symbol and an optional name, got {len(args)} arguments", head.position
        )
    symbol = ticker(args[0])
    display: str | None = None
    if len(args) == 2:
        label = args[1]
        if isinstance(label, String):
            display = label.value
        elif not (isinstance(label, Symbol) and label.name == "nil"):
            raise ArgumentTypeError(
                f"expected the asset's display name (a string or nil), found {describe(label)}",
                at(label),
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
    weights = [weight_value(form) for form in weight_forms]
    total = sum(weights, Decimal(0))
    if not any(abs(total - target) <= WEIGHT_SUM_TOLERANCE * target for target in _WEIGHT_SUMS):
        raise ArgumentTypeError(
            f"specified weights add up to {total}; expected 1 (or 100 for percentages)",
            head.position,
        )
    children = [_portfolio(form) for form in child_forms]  # zero-weight ones are checked too
    kept = [(weight, child) for weight, child in zip(weights, children, strict=True) if weight]
    fractions = tuple(Fraction(weight) / Fraction(total) for weight, _ in kept)
    return WeightSpecified(fractions, tuple(child for _, child in kept), position)


def _filter(head: Symbol, args: tuple[Node, ...], position: SourcePosition) -> Filter:
    if len(args) < 3:
        raise ArityError(
            f"filter takes a ranking indicator, a selector and children, got {len(args)} arguments",
            head.position,
        )
    ind_head, ind_args = _indicator_call(args[0], "a ranking indicator such as (rsi {:window 10})")
    if ind_args and isinstance(ind_args[0], String):
        raise ArgumentTypeError(
            "a filter's indicator takes no symbol: it is applied to each child", at(ind_args[0])
        )
    indicator_args = _indicator_args(ind_head, ind_args)
    sel_head, sel_args = call(args[1], "(select-top k) or (select-bottom k)")
    if sel_head.name not in _SELECTORS:
        raise ArgumentTypeError(
            f"expected select-top or select-bottom, found '{sel_head.name}'", sel_head.position
        )
    if len(sel_args) != 1:
        raise ArityError(f"{sel_head.name} takes one count", sel_head.position)
    count = positive_int(sel_args[0], "the selection count")
    children = _children(head, args[2:])
    return Filter(
        ind_head.name, indicator_args, sel_head.name == "select-top", count, children, position
    )


# -- conditions and expressions ---------------------------------------------------------------


def _comparison(form: Node) -> Comparison:
    head, args = call(form, "a comparison such as (> a b)")
    if head.name not in COMPARISON_OPERATORS:
        if head.name in PORTFOLIO_OPERATORS or head.name in INDICATORS:
            raise ArgumentTypeError(
                f"expected a comparison (> < >= <= =), found '{head.name}'", head.position
            )
        raise UnknownOperatorError(
            f"unknown operator '{head.name}' (comparisons: > < >= <= =)", head.position
        )
    if len(args) != 2:
        raise ArityError(f"{head.name} takes 2 arguments, got {len(args)}", head.position)
    return Comparison(head.name, _expression(args[0]), _expression(args[1]), at(form))


def _expression(form: Node) -> Expression:
    if isinstance(form, Number):
        return NumberLiteral(float(form.value), form.text, form.position)
    head, args = _indicator_call(form, "a number or an indicator")
    if not args:
        raise ArityError(f"{head.name} takes a symbol", head.position)
    symbol = ticker(args[0])
    return IndicatorRef(head.name, symbol, _indicator_args(head, args[1:]), at(form))


def _indicator_call(form: Node, expected: str) -> tuple[Symbol, tuple[Node, ...]]:
    """An indicator call's head and arguments; Composer's ``((unimplemented :name) ...)`` too.

    The head is checked against :data:`INDICATORS`; an unknown one lists the known ones.
    """
    if isinstance(form, ListForm) and form.items and isinstance(form.items[0], ListForm):
        inner_head, inner_args = call(form.items[0], "(unimplemented :indicator-name)")
        if (
            inner_head.name != _UNIMPLEMENTED
            or len(inner_args) != 1
            or not isinstance(inner_args[0], Keyword)
        ):
            raise ArgumentTypeError(
                f"expected {expected}, found a list starting with a list", form.position
            )
        head = Symbol(inner_args[0].name, inner_args[0].position)
        args = form.items[1:]
    else:
        head, args = call(form, expected)
    if head.name not in INDICATORS:
        if head.name in PORTFOLIO_OPERATORS or head.name in COMPARISON_OPERATORS:
            raise ArgumentTypeError(f"expected {expected}, found '{head.name}'", head.position)
        raise UnknownOperatorError(
            f"unknown indicator '{head.name}' (known: {', '.join(sorted(INDICATORS))})",
            head.position,
        )
    return head, args


def _indicator_args(head: Symbol, args: tuple[Node, ...]) -> IndicatorArgs:
    """The integer parameters of an indicator from its option map, in the spec's order."""
    spec = INDICATORS[head.name]
    if len(args) > 1:
        raise ArityError(f"{head.name} takes at most one option map", head.position)
    given: dict[str, int] = {}
    if args:
        options = args[0]
        if not isinstance(options, MapForm):
            raise ArgumentTypeError(
                f"expected an option map such as {_example(spec)}, found {describe(options)}",
                at(options),
            )
        allowed = spec.params or ("window",)  # current-price accepts and ignores :window
        for key, value in options.entries:
            if not isinstance(key, Keyword) or key.name not in allowed:
                keys = " ".join(f":{name}" for name in allowed)
                raise ArgumentTypeError(
                    f"unknown option {describe(key)} for {head.name} (takes {keys})", at(key)
                )
            given[key.name] = positive_int(value, f"the {key.name}")
    if any(name not in given for name in spec.params):
        what = "a window: " if spec.params == ("window",) else ""
        letters = {"window": "n", "short-window": "s", "long-window": "l", "smooth-window": "m"}
        keys = ", ".join(f":{name} {letters[name]}" for name in spec.params)
        raise ArityError(f"{head.name} needs {what}{{{keys}}}", head.position)
    values = tuple(given[name] for name in spec.params)
    if len(values) >= 2 and values[0] >= values[1]:
        raise ArgumentTypeError(
            f"{head.name}: :short-window {values[0]} must be below :long-window {values[1]}",
            head.position,
        )
    return values


def _example(spec: IndicatorSpec) -> str:
    samples = {"window": 10, "short-window": 12, "long-window": 26, "smooth-window": 9}
    return "{" + ", ".join(f":{name} {samples[name]}" for name in spec.params) + "}"


_BUILDERS: dict[str, Callable[[Symbol, tuple[Node, ...], SourcePosition], PortfolioNode]] = {
    "asset": _asset,
    "group": _group,
    "weight-equal": _weight_equal,
    "weight-specified": _weight_specified,
    "weight-inverse-volatility": _inverse_volatility,
    "filter": _filter,
    "if": _if,
}
