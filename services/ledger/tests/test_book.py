"""Unit tests of the strategy book: average cost, realised P&L, fees, oversells, unrealised."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_ledger.domain import Fill, PositionCost, Side, StrategyBook
from alchemiser_ledger.exceptions import (
    InvalidLedgerInputError,
    LedgerError,
    MissingCloseError,
    OversellError,
)

D = Decimal


def _fill(side: Side, qty: str, price: str, fees: str = "0", symbol: str = "SPY") -> Fill:
    return Fill(
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fees=D(fees),
        client_order_id="c-1",
        broker_order_id="b-1",
    )


def _book(**positions: dict[str, tuple[str, str]]) -> StrategyBook:
    """A book from ``strategy={symbol: (qty, avg_cost)}``."""
    return StrategyBook(
        {
            strategy: {
                symbol: PositionCost(D(qty), D(cost)) for symbol, (qty, cost) in held.items()
            }
            for strategy, held in positions.items()
        }
    )


def test_apply_when_first_buy_then_position_at_fill_price_and_no_realised() -> None:
    book, realised = StrategyBook().apply(_fill(Side.BUY, "10", "100"), {"A": D("10")})
    assert book.position("A", "SPY") == PositionCost(D("10"), D("100"))
    assert realised == {"A": D("0")}


def test_apply_when_second_buy_then_cost_reaveraged_by_quantity() -> None:
    book = _book(A={"SPY": ("10", "100")})
    # (10 x 100 + 5 x 103) / 15 = 1515 / 15 = 101.
    book, _ = book.apply(_fill(Side.BUY, "5", "103"), {"A": D("5")})
    assert book.position("A", "SPY") == PositionCost(D("15"), D("101"))


def test_apply_when_average_has_more_than_six_places_then_rounded_half_even() -> None:
    # (2 x 10 + 1 x 11) / 3 = 10.3333333... -> 10.333333.
    book, _ = _book(A={"SPY": ("2", "10")}).apply(_fill(Side.BUY, "1", "11"), {"A": D("1")})
    assert book.position("A", "SPY") == PositionCost(D("3"), D("10.333333"))
    # (1 x 1.000000 + 1 x 1.000001) / 2 = 1.0000005 -> 1.000000 (half to even, not up).
    book, _ = _book(A={"SPY": ("1", "1")}).apply(_fill(Side.BUY, "1", "1.000001"), {"A": D("1")})
    assert book.position("A", "SPY") == PositionCost(D("2"), D("1.000000"))


def test_apply_when_buy_with_fees_then_fees_realised_as_loss_and_not_in_cost() -> None:
    # Fees 1.00 over parts 1 and 2: A 1.00 x 1/3 = 0.333.. -> 0.33; B = 1.00 - 0.33 = 0.67.
    book, realised = StrategyBook().apply(
        _fill(Side.BUY, "3", "50", fees="1.00"), {"A": D("1"), "B": D("2")}
    )
    assert realised == {"A": D("-0.33"), "B": D("-0.67")}
    assert book.position("A", "SPY") == PositionCost(D("1"), D("50"))
    assert book.position("B", "SPY") == PositionCost(D("2"), D("50"))


def test_apply_when_sell_with_fees_then_realised_is_gain_less_fees() -> None:
    book = _book(A={"SPY": ("10", "100")})
    # 4 x (110 - 100) - 1.00 = 39.00; 6 left at the unchanged average 100.
    book, realised = book.apply(_fill(Side.SELL, "4", "110", fees="1.00"), {"A": D("4")})
    assert realised == {"A": D("39.00")}
    assert book.position("A", "SPY") == PositionCost(D("6"), D("100"))


def test_apply_when_sell_split_over_two_costs_then_each_realises_on_its_own_cost() -> None:
    book = _book(A={"SPY": ("10", "100")}, B={"SPY": ("10", "90")})
    # Fees 0.05 over 5 and 5: A 0.025 -> 0.02 (half to even); B = 0.05 - 0.02 = 0.03.
    # A: 5 x (105 - 100) - 0.02 = 24.98; B: 5 x (105 - 90) - 0.03 = 74.97.
    _, realised = book.apply(_fill(Side.SELL, "10", "105", fees="0.05"), {"A": D("5"), "B": D("5")})
    assert realised == {"A": D("24.98"), "B": D("74.97")}


def test_apply_when_realised_has_sub_cent_digits_then_rounded_to_cents() -> None:
    book = _book(A={"SPY": ("1", "100")})
    # 0.333333333 x (103 - 100) = 0.999999999 -> 1.00.
    _, realised = book.apply(_fill(Side.SELL, "0.333333333", "103"), {"A": D("0.333333333")})
    assert realised == {"A": D("1.00")}


def test_apply_when_whole_position_sold_then_position_removed() -> None:
    book = _book(A={"SPY": ("10", "100")})
    book, realised = book.apply(_fill(Side.SELL, "10", "99"), {"A": D("10")})
    assert book.position("A", "SPY") is None
    assert book.positions == {}
    assert realised == {"A": D("-10.00")}


def test_apply_when_sell_exceeds_holding_then_oversell_error() -> None:
    book = _book(A={"SPY": ("5", "100")})
    with pytest.raises(OversellError):
        book.apply(_fill(Side.SELL, "6", "100"), {"A": D("6")})
    with pytest.raises(LedgerError):
        book.apply(_fill(Side.SELL, "1", "100"), {"B": D("1")})
    assert book.position("A", "SPY") == PositionCost(D("5"), D("100"))


def test_apply_when_parts_do_not_sum_to_fill_then_invalid_input() -> None:
    with pytest.raises(InvalidLedgerInputError):
        StrategyBook().apply(_fill(Side.BUY, "10", "100"), {"A": D("4"), "B": D("5")})


def test_apply_when_book_applied_then_original_book_unchanged() -> None:
    book = _book(A={"SPY": ("10", "100")})
    book.apply(_fill(Side.BUY, "10", "100"), {"A": D("10")})
    assert book.position("A", "SPY") == PositionCost(D("10"), D("100"))


def test_holdings_when_two_strategies_hold_then_quantity_per_strategy() -> None:
    book = _book(A={"SPY": ("10", "100")}, B={"SPY": ("5", "101"), "TLT": ("3", "50")})
    assert book.holdings("SPY") == {"A": D("10"), "B": D("5")}
    assert book.holdings("TLT") == {"B": D("3")}
    assert book.holdings("QQQ") == {}


def test_unrealised_when_closes_given_then_qty_times_close_less_cost_in_cents() -> None:
    book = _book(
        A={"SPY": ("10", "100"), "TLT": ("3", "50")},
        B={"SPY": ("5", "101")},
        C={"SPY": ("0.333333333", "100")},
    )
    closes = {"SPY": D("102.5"), "TLT": D("49")}
    # A: 10 x 2.5 + 3 x (-1) = 22.00; B: 5 x 1.5 = 7.50; C: 0.333333333 x 2.5 = 0.8333.. -> 0.83.
    assert book.unrealised(closes) == {"A": D("22.00"), "B": D("7.50"), "C": D("0.83")}


def test_unrealised_when_close_missing_then_missing_close_error() -> None:
    with pytest.raises(MissingCloseError):
        _book(A={"SPY": ("1", "100")}).unrealised({"TLT": D("50")})


@pytest.mark.parametrize(
    ("qty", "price", "fees"),
    [
        ("0", "100", "0"),
        ("0.0000000001", "100", "0"),
        ("1", "0", "0"),
        ("1", "100", "-0.01"),
        ("1", "100", "0.005"),
    ],
)
def test_fill_when_value_out_of_range_then_invalid_input(qty: str, price: str, fees: str) -> None:
    with pytest.raises(InvalidLedgerInputError):
        _fill(Side.BUY, qty, price, fees)
