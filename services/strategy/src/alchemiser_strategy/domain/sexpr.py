"""Reader for Composer-style s-expression files (a small subset of Clojure's reader).

Supported: lists ``( )``, vectors ``[ ]``, maps ``{ }``, keywords (``:window``), strings with
the escapes ``\\" \\\\ \\n \\t \\r``, integers and decimals (kept exact as ``int`` and
``Decimal``), symbols (``asset``, ``>=``, ``nil``), comments from ``;`` to the end of the line,
and commas as whitespace. Every node carries its :class:`SourcePosition`; every syntax error
raises :class:`StrategySyntaxError` reading ``file:line:col: message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from alchemiser_strategy.domain.errors import SourcePosition, StrategySyntaxError

__all__ = [
    "Keyword",
    "ListForm",
    "MapForm",
    "Node",
    "Number",
    "String",
    "Symbol",
    "VectorForm",
    "parse",
    "parse_one",
]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A bare name such as ``asset``, ``>`` or ``nil``."""

    name: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword such as ``:window``; ``name`` excludes the colon."""

    name: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class String:
    """A string literal with its escapes resolved."""

    value: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal, exact: ``int`` for integers, ``Decimal`` otherwise."""

    value: int | Decimal
    text: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class ListForm:
    """A parenthesised list ``( ... )``."""

    items: tuple[Node, ...]
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class VectorForm:
    """A bracketed vector ``[ ... ]``."""

    items: tuple[Node, ...]
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class MapForm:
    """A braced map ``{ k v ... }``; entries keep their order."""

    entries: tuple[tuple[Node, Node], ...]
    position: SourcePosition


Node = Symbol | Keyword | String | Number | ListForm | VectorForm | MapForm

_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_DELIMITERS = frozenset('()[]{}";')
_RESERVED = frozenset("#'`~@^\\")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")
_LOOKS_NUMERIC = re.compile(r"[+-]?\d")


class _Reader:
    """Single-pass reader over the text, tracking line and column."""

    def __init__(self, text: str, file_name: str) -> None:
        self._text = text
        self._file = file_name
        self._index = 0
        self._line = 1
        self._column = 1

    # -- cursor ---------------------------------------------------------------------------
    def _position(self) -> SourcePosition:
        return SourcePosition(self._file, self._line, self._column)

    def _peek(self) -> str:
        return self._text[self._index] if self._index < len(self._text) else ""

    def _advance(self) -> str:
        char = self._text[self._index]
        self._index += 1
        if char == "\n":
            self._line += 1
            self._column = 1
        else:
            self._column += 1
        return char

    def _skip_blank(self) -> None:
        while self._index < len(self._text):
            char = self._text[self._index]
            if char == ";":
                while self._index < len(self._text) and self._text[self._index] != "\n":
                    self._advance()
            elif char.isspace() or char == ",":
                self._advance()
            else:
                return

    def _fail(self, message: str, position: SourcePosition | None = None) -> StrategySyntaxError:
        return StrategySyntaxError(message, position or self._position())

    # -- forms ----------------------------------------------------------------------------
    def read_all(self) -> tuple[Node, ...]:
        forms: list[Node] = []
        while True:
            self._skip_blank()
            if self._index >= len(self._text):
                return tuple(forms)
            forms.append(self._read_form())

    def _read_form(self) -> Node:
        char = self._peek()
        start = self._position()
        if char in _CLOSERS:
            return self._read_collection()
        if char in _CLOSERS.values():
            raise self._fail(f"unexpected '{char}' with no matching opening bracket")
        if char == '"':
            return self._read_string()
        if char in _RESERVED:
            raise self._fail(f"unexpected character '{char}' (reader macros are not supported)")
        token = self._read_token()
        if token.startswith(":"):
            if len(token) == 1:
                raise self._fail("keyword without a name", start)
            return Keyword(token[1:], start)
        if _LOOKS_NUMERIC.match(token):
            if not _NUMBER.fullmatch(token):
                raise self._fail(f"invalid number '{token}'", start)
            if "." in token or "e" in token.lower():
                return Number(Decimal(token), token, start)
            return Number(int(token), token, start)
        return Symbol(token, start)

    def _read_token(self) -> str:
        begin = self._index
        while self._index < len(self._text):
            char = self._text[self._index]
            if char.isspace() or char == "," or char in _DELIMITERS:
                break
            self._advance()
        return self._text[begin : self._index]

    def _read_string(self) -> String:
        start = self._position()
        self._advance()  # opening quote
        chars: list[str] = []
        while True:
            if self._index >= len(self._text):
                raise self._fail("unterminated string", start)
            char = self._advance()
            if char == '"':
                return String("".join(chars), start)
            if char == "\\":
                escape_at = SourcePosition(self._file, self._line, self._column - 1)
                if self._index >= len(self._text):
                    raise self._fail("unterminated string", start)
                code = self._advance()
                if code not in _ESCAPES:
                    raise self._fail(f"unknown escape '\\{code}' in string", escape_at)
                chars.append(_ESCAPES[code])
            else:
                chars.append(char)

    def _read_collection(self) -> Node:
        start = self._position()
        opener = self._advance()
        closer = _CLOSERS[opener]
        items: list[Node] = []
        while True:
            self._skip_blank()
            if self._index >= len(self._text):
                raise self._fail(f"unclosed '{opener}' (reached the end of the file)", start)
            char = self._peek()
            if char == closer:
                self._advance()
                break
            if char in _CLOSERS.values():
                raise self._fail(
                    f"expected '{closer}' to close '{opener}' opened at "
                    f"{start.line}:{start.column}, found '{char}'"
                )
            items.append(self._read_form())
        if opener == "(":
            return ListForm(tuple(items), start)
        if opener == "[":
            return VectorForm(tuple(items), start)
        if len(items) % 2:
            raise self._fail(
                f"map has an odd number of forms ({len(items)}); every key needs a value", start
            )
        pairs = tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))
        return MapForm(pairs, start)


def parse(text: str, file_name: str) -> tuple[Node, ...]:
    """Read every top-level form of ``text``; ``file_name`` is used only in positions."""
    return _Reader(text, file_name).read_all()


def parse_one(text: str, file_name: str) -> Node:
    """Read a text that must hold exactly one top-level form."""
    forms = parse(text, file_name)
    if not forms:
        raise StrategySyntaxError("the file holds no form", SourcePosition(file_name, 1, 1))
    if len(forms) > 1:
        raise StrategySyntaxError(
            "expected exactly one top-level form, found another one here", _position_of(forms[1])
        )
    return forms[0]


def _position_of(node: Node) -> SourcePosition:
    return node.position
