"""Small readers of parsed forms used by the compiler: typed values or positioned errors.

Each reader takes a parsed :data:`~alchemiser_strategy.domain.sexpr.Node` and returns the value
it expects (an operator call, a string, a ticker, a weight, a whole number, a meta map) or
raises an ``ArgumentTypeError`` at the form's position that describes what it found instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from alchemiser_strategy.domain.errors import ArgumentTypeError, SourcePosition
from alchemiser_strategy.domain.sexpr import (
    Keyword,
    ListForm,
    MapForm,
    Node,
    Number,
    String,
    Symbol,
    VectorForm,
)

__all__ = [
    "at",
    "call",
    "describe",
    "meta_map",
    "plain",
    "positive_int",
    "string_value",
    "ticker",
    "weight_value",
]

_TICKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/]*")
_COMPOSER_TICKER = re.compile(r"^[A-Z_]+::(?P<ticker>[^/]+)(//[A-Z]+)?$")


def call(form: Node, expected: str) -> tuple[Symbol, tuple[Node, ...]]:
    """An operator call's head symbol and arguments; ``expected`` names what was wanted."""
    if not isinstance(form, ListForm):
        raise ArgumentTypeError(f"expected {expected}, found {describe(form)}", at(form))
    if not form.items:
        raise ArgumentTypeError(f"expected {expected}, found an empty list", form.position)
    head = form.items[0]
    if not isinstance(head, Symbol):
        raise ArgumentTypeError(
            f"a list must start with an operator name, found {describe(head)}", at(head)
        )
    return head, form.items[1:]


def string_value(form: Node, what: str) -> str:
    """The value of a string literal; ``what`` names it in the error."""
    if not isinstance(form, String):
        raise ArgumentTypeError(f"expected {what} (a string), found {describe(form)}", at(form))
    return form.value


def ticker(form: Node) -> str:
    """An upper-case ticker from a string, Composer's ``EQUITIES::SPY//USD`` reduced to ``SPY``."""
    raw = string_value(form, "a symbol").strip()
    composer = _COMPOSER_TICKER.match(raw)
    ticker = composer.group("ticker") if composer else raw
    if not _TICKER.fullmatch(ticker):
        raise ArgumentTypeError(f"invalid symbol {raw!r}", at(form))
    return ticker.upper()


def weight_value(form: Node) -> Decimal:
    """A ``weight-specified`` weight: an exact number >= 0."""
    if not isinstance(form, Number):
        raise ArgumentTypeError(f"expected a weight (a number), found {describe(form)}", at(form))
    value = Decimal(form.value)
    if value < 0:
        raise ArgumentTypeError(f"a weight must not be negative, got {form.text}", form.position)
    return value


def positive_int(form: Node, what: str) -> int:
    """A whole number >= 1 (windows, counts); ``what`` names it in the error."""
    if not isinstance(form, Number) or not isinstance(form.value, int):
        raise ArgumentTypeError(
            f"expected {what} (a whole number), found {describe(form)}", at(form)
        )
    if form.value < 1:
        raise ArgumentTypeError(f"{what} must be at least 1, got {form.value}", form.position)
    return form.value


def meta_map(form: MapForm) -> dict[str, object]:
    """A ``defsymphony`` meta map as plain values keyed by keyword name."""
    meta: dict[str, object] = {}
    for key, value in form.entries:
        if not isinstance(key, Keyword):
            raise ArgumentTypeError(f"meta keys must be keywords, found {describe(key)}", at(key))
        meta[key.name] = plain(value)
    return meta


def plain(form: Node) -> object:
    """An atom as a plain value (keywords keep their colon)."""
    if isinstance(form, String):
        return form.value
    if isinstance(form, Number):
        return form.value
    if isinstance(form, Keyword):
        return f":{form.name}"
    if isinstance(form, Symbol):
        return form.name
    raise ArgumentTypeError(f"unsupported meta value {describe(form)}", at(form))


def at(form: Node) -> SourcePosition:
    """Where ``form`` starts."""
    return form.position


def describe(form: Node) -> str:
    """How ``form`` is named in error messages, e.g. ``the number 5``."""
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
