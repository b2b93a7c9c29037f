"""Unit tests of daily P&L: the account and strategy figures, their identity, MTD and breaks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import pytest

from alchemiser_ledger.domain import (
    DailySnapshot,
    Fill,
    PnlFigures,
    PositionCost,
    Side,
    StrategyBook,
    StrategyTargets,
    attribute_fill,
    pnl_by_day,
    position_breaks,
)
from alchemiser_ledger.exceptions import InvalidLedgerInputError

D = Decimal

DAY_1 = date(2024, 1, 30)
DAY_2 = date(2024, 1, 31)
DAY_3 = date(2024, 2, 1)

# A (allocation 0.6) wants SPY only; B (0.4) wants SPY and TLT half each.
# SPY shares: A 0.6 x 1 = 0.6, B 0.4 x 0.5 = 0.2 -> A 0.75, B 0.25. TLT: B only.
TARGETS = StrategyTargets(
    allocations={"A": D("0.6"), "B": D("0.4")},
    weights={"A": {"SPY": D("1")}, "B": {"SPY": D("0.5"), "TLT": D("0.5")}},
)


def _fill(side: Side, symbol: str, qty: str, price: str, fees: str) -> Fill:
    return Fill(
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fees=D(fees),
        client_order_id=f"{side}-{symbol}",
        broker_order_id=None,
    )


def _trade(book: StrategyBook, fills: list[Fill]) -> tuple[StrategyBook, dict[str, Decimal]]:
    """Attribute and book ``fills`` in order; return the book and the realised sum per strategy."""
    realised: dict[str, Decimal] = {}
    for fill in fills:
        parts = attribute_fill(fill, TARGETS, book.holdings(fill.symbol))
        book, booked = book.apply(fill, parts)
        for strategy, amount in booked.items():
            realised[strategy] = realised.get(strategy, D("0")) + amount
    return book, realised


def _sum(figures: Mapping[str, PnlFigures], field: str) -> Decimal:
    return sum((getattr(figure, field) for figure in figures.values()), D("0"))


def test_pnl_when_trades_are_the_only_cash_flows_then_strategies_sum_to_account() -> None:
    # Day 1: buy 40 SPY @ 100 (fees 1.00) -> A 30, B 10, fees A 0.75, B 0.25;
    #        buy 20 TLT @ 50 (fees 0.50) -> B 20.
    #        cash 10000 - 4000 - 1.00 - 1000 - 0.50 = 4998.50.
    book_1, realised_1 = _trade(
        StrategyBook(),
        [_fill(Side.BUY, "SPY", "40", "100", "1.00"), _fill(Side.BUY, "TLT", "20", "50", "0.50")],
    )
    assert book_1.holdings("SPY") == {"A": D("30"), "B": D("10")}
    assert realised_1 == {"A": D("-0.75"), "B": D("-0.75")}
    # Day 2: sell 20 SPY @ 103 (fees 0.40) split by holdings 30:10 -> A 15, B 5;
    #        fees A 0.40 x 15/20 = 0.30, B 0.10; realised A 15 x 3 - 0.30 = 44.70,
    #        B 5 x 3 - 0.10 = 14.90. Cash 4998.50 + 2060 - 0.40 = 7058.10.
    book_2, realised_2 = _trade(book_1, [_fill(Side.SELL, "SPY", "20", "103", "0.40")])
    assert realised_2 == {"A": D("44.70"), "B": D("14.90")}
    # Day 3: no trade; prices move.
    snapshots = [
        # 4998.50 + 40 x 101 + 20 x 50 = 10038.50
        DailySnapshot(
            DAY_1,
            equity=D("10038.50"),
            cash=D("4998.50"),
            positions={"SPY": D("40"), "TLT": D("20")},
            closes={"SPY": D("101"), "TLT": D("50")},
        ),
        # 7058.10 + 20 x 102 + 20 x 51 = 10118.10
        DailySnapshot(
            DAY_2,
            equity=D("10118.10"),
            cash=D("7058.10"),
            positions={"SPY": D("20"), "TLT": D("20")},
            closes={"SPY": D("102"), "TLT": D("51")},
        ),
        # 7058.10 + 20 x 99 + 20 x 52 = 10078.10
        DailySnapshot(
            DAY_3,
            equity=D("10078.10"),
            cash=D("7058.10"),
            positions={"SPY": D("20"), "TLT": D("20")},
            closes={"SPY": D("99"), "TLT": D("52")},
        ),
    ]
    books = {DAY_1: book_1, DAY_2: book_2, DAY_3: book_2}
    assert all(position_breaks(s, books[s.session]) == {} for s in snapshots)

    days = pnl_by_day(
        snapshots, {DAY_1: realised_1, DAY_2: realised_2}, books, starting_equity=D("10000")
    )

    day_1, day_2, day_3 = days
    # Account: 38.50, 79.60, -40.00; MTD restarts on 1 February; since inception 78.10.
    assert day_1.account == PnlFigures(D("38.50"), D("38.50"), D("38.50"))
    assert day_2.account == PnlFigures(D("79.60"), D("118.10"), D("118.10"))
    assert day_3.account == PnlFigures(D("-40.00"), D("-40.00"), D("78.10"))
    # Unrealised at each close: A 30 x 1 = 30; B 10 x 1 + 20 x 0 = 10.
    #                           A 15 x 2 = 30; B 5 x 2 + 20 x 1 = 30.
    #                           A 15 x -1 = -15; B 5 x -1 + 20 x 2 = 35.
    assert day_1.unrealised == {"A": D("30.00"), "B": D("10.00")}
    assert day_2.unrealised == {"A": D("30.00"), "B": D("30.00")}
    assert day_3.unrealised == {"A": D("-15.00"), "B": D("35.00")}
    # A: -0.75 + 30 = 29.25; 44.70 + 0 = 44.70; 0 + (-45) = -45.00.
    assert day_1.strategies["A"] == PnlFigures(D("29.25"), D("29.25"), D("29.25"))
    assert day_2.strategies["A"] == PnlFigures(D("44.70"), D("73.95"), D("73.95"))
    assert day_3.strategies["A"] == PnlFigures(D("-45.00"), D("-45.00"), D("28.95"))
    # B: -0.75 + 10 = 9.25; 14.90 + 20 = 34.90; 0 + 5 = 5.00.
    assert day_1.strategies["B"] == PnlFigures(D("9.25"), D("9.25"), D("9.25"))
    assert day_2.strategies["B"] == PnlFigures(D("34.90"), D("44.15"), D("44.15"))
    assert day_3.strategies["B"] == PnlFigures(D("5.00"), D("5.00"), D("49.15"))
    for day in days:
        for field in ("day", "month_to_date", "since_inception"):
            assert _sum(day.strategies, field) == getattr(day.account, field)


def test_pnl_when_month_changes_then_month_to_date_restarts() -> None:
    snapshots = [
        DailySnapshot(date(2024, 1, 31), equity=D("1010"), cash=D("1010")),
        DailySnapshot(date(2024, 2, 1), equity=D("1005"), cash=D("1005")),
        DailySnapshot(date(2024, 2, 2), equity=D("1025"), cash=D("1025")),
    ]
    books = {snapshot.session: StrategyBook() for snapshot in snapshots}
    days = pnl_by_day(snapshots, {}, books, starting_equity=D("1000"))
    # Days 10, -5, 20; MTD 10 | -5, 15; since inception 10, 5, 25.
    assert [day.account for day in days] == [
        PnlFigures(D("10"), D("10"), D("10")),
        PnlFigures(D("-5"), D("-5"), D("5")),
        PnlFigures(D("20"), D("15"), D("25")),
    ]


def test_pnl_when_strategy_closes_out_then_its_sums_carry_on_at_zero_a_day() -> None:
    book = StrategyBook({"A": {"SPY": PositionCost(D("1"), D("100"))}})
    snapshots = [
        DailySnapshot(
            DAY_1,
            equity=D("1002"),
            cash=D("900"),
            positions={"SPY": D("1")},
            closes={"SPY": D("102")},
        ),
        DailySnapshot(DAY_2, equity=D("1002"), cash=D("1002"), closes={"SPY": D("102")}),
        DailySnapshot(DAY_3, equity=D("1002"), cash=D("1002"), closes={"SPY": D("102")}),
    ]
    # Bought at 100 before day 1 on a 1000 account; sold at 102 on day 2 (realised 2).
    books = {DAY_1: book, DAY_2: StrategyBook(), DAY_3: StrategyBook()}
    days = pnl_by_day(snapshots, {DAY_2: {"A": D("2.00")}}, books, starting_equity=D("1000"))
    # Day 1: unrealised 0 -> 2 = 2; day 2: realised 2 + (0 - 2) = 0; day 3 (February): 0.
    assert [day.strategies["A"] for day in days] == [
        PnlFigures(D("2.00"), D("2.00"), D("2.00")),
        PnlFigures(D("0.00"), D("2.00"), D("2.00")),
        PnlFigures(D("0"), D("0"), D("2.00")),
    ]


def test_pnl_when_sessions_not_increasing_then_invalid_input() -> None:
    snapshots = [
        DailySnapshot(DAY_2, equity=D("1"), cash=D("1")),
        DailySnapshot(DAY_1, equity=D("1"), cash=D("1")),
    ]
    books = {DAY_1: StrategyBook(), DAY_2: StrategyBook()}
    with pytest.raises(InvalidLedgerInputError):
        pnl_by_day(snapshots, {}, books, starting_equity=D("1"))


def test_pnl_when_realised_day_has_no_snapshot_then_invalid_input() -> None:
    snapshots = [DailySnapshot(DAY_1, equity=D("1"), cash=D("1"))]
    with pytest.raises(InvalidLedgerInputError):
        pnl_by_day(
            snapshots, {DAY_2: {"A": D("1")}}, {DAY_1: StrategyBook()}, starting_equity=D("1")
        )


def test_pnl_when_book_missing_for_a_session_then_invalid_input() -> None:
    snapshots = [DailySnapshot(DAY_1, equity=D("1"), cash=D("1"))]
    with pytest.raises(InvalidLedgerInputError):
        pnl_by_day(snapshots, {}, {}, starting_equity=D("1"))


def test_position_breaks_when_book_differs_from_account_then_difference_per_symbol() -> None:
    snapshot = DailySnapshot(
        DAY_1,
        equity=D("0"),
        cash=D("0"),
        positions={"SPY": D("20"), "GLD": D("1")},
        closes={"SPY": D("1"), "GLD": D("1"), "TLT": D("1")},
    )
    book = StrategyBook(
        {
            "A": {"SPY": PositionCost(D("15"), D("1")), "TLT": PositionCost(D("3"), D("1"))},
            "B": {"GLD": PositionCost(D("1"), D("1"))},
        }
    )
    # SPY 20 - 15 = 5; TLT 0 - 3 = -3; GLD 1 - 1 = 0 (not a break).
    assert position_breaks(snapshot, book) == {"SPY": D("5"), "TLT": D("-3")}
