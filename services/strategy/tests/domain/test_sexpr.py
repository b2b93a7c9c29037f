"""The s-expression reader: every node kind, comments, and error positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_strategy.domain.errors import SourcePosition, StrategySyntaxError
from alchemiser_strategy.domain.sexpr import (
    Keyword,
    ListForm,
    MapForm,
    Number,
    String,
    Symbol,
    VectorForm,
    parse,
    parse_one,
)


def _syntax_error(text: str) -> StrategySyntaxError:
    with pytest.raises(StrategySyntaxError) as caught:
        parse(text, "s.clj")
    return caught.value


def test_parse_when_list_of_atoms_then_each_kind_and_position_is_kept() -> None:
    form = parse_one('(asset "SPY" :window 10 0.75 -3 nil)', "f.clj")

    assert isinstance(form, ListForm)
    assert form.position == SourcePosition("f.clj", 1, 1)
    head, name, keyword, integer, decimal, negative, nil = form.items
    assert head == Symbol("asset", SourcePosition("f.clj", 1, 2))
    assert name == String("SPY", SourcePosition("f.clj", 1, 8))
    assert keyword == Keyword("window", SourcePosition("f.clj", 1, 14))
    assert integer == Number(10, "10", SourcePosition("f.clj", 1, 22))
    assert decimal == Number(Decimal("0.75"), "0.75", SourcePosition("f.clj", 1, 25))
    assert negative == Number(-3, "-3", SourcePosition("f.clj", 1, 30))
    assert nil == Symbol("nil", SourcePosition("f.clj", 1, 33))


def test_parse_when_numbers_then_integers_are_int_and_decimals_are_exact() -> None:
    form = parse_one("[1 0.1 2.50 -10 1e2 +7]", "f.clj")

    assert isinstance(form, VectorForm)
    values = [item.value for item in form.items if isinstance(item, Number)]
    assert values == [1, Decimal("0.1"), Decimal("2.50"), -10, Decimal("1e2"), 7]
    assert isinstance(values[0], int)
    assert isinstance(values[1], Decimal)


def test_parse_when_map_then_entries_pair_up_in_order_and_commas_are_whitespace() -> None:
    form = parse_one('{:asset-class "EQUITIES", :rebalance-frequency :daily}', "f.clj")

    assert isinstance(form, MapForm)
    keys = [key.name for key, _ in form.entries if isinstance(key, Keyword)]
    assert keys == ["asset-class", "rebalance-frequency"]
    first_value, second_value = (value for _, value in form.entries)
    assert first_value == String("EQUITIES", SourcePosition("f.clj", 1, 15))
    assert second_value == Keyword("daily", SourcePosition("f.clj", 1, 48))


def test_parse_when_symbols_are_operators_then_they_are_symbols() -> None:
    form = parse_one("(>= <= > < weight-equal select-top)", "f.clj")

    assert isinstance(form, ListForm)
    assert [item.name for item in form.items if isinstance(item, Symbol)] == [
        ">=",
        "<=",
        ">",
        "<",
        "weight-equal",
        "select-top",
    ]


def test_parse_when_string_has_escapes_then_they_are_resolved() -> None:
    form = parse_one(r'"a \"quoted\" \\ back\nslash\tand\r"', "f.clj")

    assert form == String('a "quoted" \\ back\nslash\tand\r', SourcePosition("f.clj", 1, 1))


def test_parse_when_comments_and_newlines_then_positions_count_lines_and_columns() -> None:
    text = '; header comment\n(a ; trailing\n   "x") ; after\n\n  [b]'
    forms = parse(text, "f.clj")

    assert len(forms) == 2
    first, second = forms
    assert isinstance(first, ListForm)
    assert first.position == SourcePosition("f.clj", 2, 1)
    assert first.items[1] == String("x", SourcePosition("f.clj", 3, 4))
    assert isinstance(second, VectorForm)
    assert second.position == SourcePosition("f.clj", 5, 3)
    assert second.items == (Symbol("b", SourcePosition("f.clj", 5, 4)),)


def test_parse_when_nested_collections_then_structure_is_kept() -> None:
    form = parse_one("(f [1 {:k [2]}] ())", "f.clj")

    assert isinstance(form, ListForm)
    vector = form.items[1]
    assert isinstance(vector, VectorForm)
    inner_map = vector.items[1]
    assert isinstance(inner_map, MapForm)
    key, value = inner_map.entries[0]
    assert key == Keyword("k", SourcePosition("f.clj", 1, 8))
    assert isinstance(value, VectorForm)
    assert form.items[2] == ListForm((), SourcePosition("f.clj", 1, 17))


def test_parse_when_empty_text_then_no_forms() -> None:
    assert parse("  ; only a comment\n", "f.clj") == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(a (b c)", "s.clj:1:1: unclosed '(' (reached the end of the file)"),
        ("(a\n  [b", "s.clj:2:3: unclosed '[' (reached the end of the file)"),
        ("(a))", "s.clj:1:4: unexpected ')' with no matching opening bracket"),
        ("(a\n b]", "s.clj:2:3: expected ')' to close '(' opened at 1:1, found ']'"),
        ('(a "abc', "s.clj:1:4: unterminated string"),
        ('(a\n  "x\\q")', "s.clj:2:5: unknown escape '\\q' in string"),
        (
            "{:a 1 :b}",
            "s.clj:1:1: map has an odd number of forms (3); every key needs a value",
        ),
        ("(a #{1})", "s.clj:1:4: unexpected character '#' (reader macros are not supported)"),
        ("(a 'b)", "s.clj:1:4: unexpected character ''' (reader macros are not supported)"),
        ("(a 12abc)", "s.clj:1:4: invalid number '12abc'"),
        ("(a 1.2.3)", "s.clj:1:4: invalid number '1.2.3'"),
        ("(a : b)", "s.clj:1:4: keyword without a name"),
    ],
)
def test_parse_when_syntax_error_then_message_reads_file_line_col(text: str, expected: str) -> None:
    error = _syntax_error(text)

    assert str(error) == expected


def test_parse_one_when_two_forms_then_error_points_at_the_second() -> None:
    with pytest.raises(StrategySyntaxError) as caught:
        parse_one("(a)\n(b)", "s.clj")

    assert str(caught.value).startswith("s.clj:2:1: expected exactly one top-level form")
    assert caught.value.position == SourcePosition("s.clj", 2, 1)


def test_parse_one_when_no_form_then_error_points_at_start() -> None:
    with pytest.raises(StrategySyntaxError, match=r"^s\.clj:1:1: the file holds no form$"):
        parse_one("; nothing\n", "s.clj")
