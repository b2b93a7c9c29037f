"""The ledger's statements: the account's trades and its P&L, read back from the store.

:func:`account_pnl` replays the account's fills (in booking order, with the strategy split
booked at the time) into the strategy book session by session and hands the domain's
:func:`~alchemiser_ledger.domain.pnl_by_day` the account's snapshots, the realised P&L of
each session and the book at each close. The base of the account's P&L is the equity the
ledger read before the account's first workflow (its *inception*).

A fill whose session has no snapshot (its workflow ended without one) is counted in the
next session that has one; a symbol the book holds but the snapshot does not price (the
account's positions and the book disagree) is valued at its last fill price, and the
statement lists the disagreement in :attr:`PnlStatement.breaks`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from alchemiser_ledger.adapters.store import LedgerStore, SnapshotRow, TradeRow
from alchemiser_ledger.domain import (
    DailySnapshot,
    DayPnl,
    StrategyBook,
    pnl_by_day,
    position_breaks,
)
from alchemiser_ledger.domain.decimals import ZERO

__all__ = ["PnlStatement", "account_pnl", "pnl_json", "trade_json"]


@dataclass(frozen=True, slots=True)
class PnlStatement:
    """One account's P&L per session (in ``[start, end]``), from its inception."""

    account_id: str
    inception_equity: Decimal | None
    days: tuple[DayPnl, ...]
    breaks: Mapping[date, Mapping[str, Decimal]] = field(default_factory=dict)


def account_pnl(
    store: LedgerStore, account_id: str, *, start: date | None = None, end: date | None = None
) -> PnlStatement:
    """The account's P&L statement (see the module docstring)."""
    snapshots = store.snapshots(account_id)
    inception = store.inception_equity(account_id)
    if not snapshots:
        return PnlStatement(account_id, inception, ())
    base = inception if inception is not None else snapshots[0].equity
    fills = [trade for trade in store.trades(account_id) if trade.parts]
    sessions = [snapshot.session for snapshot in snapshots]
    books, realised = _books_by_session(fills, sessions)
    daily, breaks = _priced(snapshots, books, fills)
    days = pnl_by_day(daily, realised, books, starting_equity=base)
    chosen = tuple(
        day
        for day in days
        if (start is None or day.session >= start) and (end is None or day.session <= end)
    )
    return PnlStatement(account_id, base, chosen, breaks)


def _session_for(trade: TradeRow, sessions: Sequence[date]) -> date:
    """The first snapshot session at or after the trade's (the last one if none)."""
    if trade.session is None:
        return sessions[-1]
    index = bisect_left(sessions, trade.session)
    return sessions[min(index, len(sessions) - 1)]


def _books_by_session(
    fills: Sequence[TradeRow], sessions: Sequence[date]
) -> tuple[dict[date, StrategyBook], dict[date, dict[str, Decimal]]]:
    """The book at each session's close and the realised P&L booked on each session."""
    by_session: dict[date, list[TradeRow]] = {}
    for trade in fills:
        by_session.setdefault(_session_for(trade, sessions), []).append(trade)
    book = StrategyBook()
    books: dict[date, StrategyBook] = {}
    realised: dict[date, dict[str, Decimal]] = {}
    for session in sessions:
        for trade in by_session.get(session, []):
            parts = {strategy: qty for strategy, (qty, _) in trade.parts.items()}
            book, _ = book.apply(trade.as_fill(), parts)
            day = realised.setdefault(session, {})
            for strategy, (_, amount) in trade.parts.items():
                day[strategy] = day.get(strategy, ZERO) + amount
        books[session] = book
    return books, realised


def _priced(
    snapshots: Sequence[SnapshotRow],
    books: Mapping[date, StrategyBook],
    fills: Sequence[TradeRow],
) -> tuple[list[DailySnapshot], dict[date, dict[str, Decimal]]]:
    """The snapshots with a close for every symbol the book holds, and the breaks."""
    last_price: dict[str, Decimal] = {}
    fills_by_session: dict[date | None, list[TradeRow]] = {}
    for trade in fills:
        fills_by_session.setdefault(trade.session, []).append(trade)
    daily: list[DailySnapshot] = []
    breaks: dict[date, dict[str, Decimal]] = {}
    for snapshot in snapshots:
        for trade in fills_by_session.get(snapshot.session, []):
            if trade.price is not None:
                last_price[trade.symbol] = trade.price
        day = snapshot.as_daily()
        closes = dict(day.closes)
        for held in books[snapshot.session].positions.values():
            for symbol in held:
                if symbol not in closes and symbol in last_price:
                    closes[symbol] = last_price[symbol]
        for symbol, (_, price) in snapshot.positions.items():
            last_price[symbol] = price
        day = DailySnapshot(
            session=day.session,
            equity=day.equity,
            cash=day.cash,
            positions=day.positions,
            closes=closes,
        )
        found = position_breaks(day, books[snapshot.session])
        if found:
            breaks[snapshot.session] = found
        daily.append(day)
    return daily, breaks


def _figures(day: Decimal, mtd: Decimal, inception: Decimal) -> dict[str, str]:
    return {"day": str(day), "month_to_date": str(mtd), "since_inception": str(inception)}


def pnl_json(statement: PnlStatement) -> dict[str, Any]:
    """The statement as JSON-ready data (decimals as strings, exact)."""
    return {
        "account_id": statement.account_id,
        "inception_equity": None
        if statement.inception_equity is None
        else str(statement.inception_equity),
        "days": [
            {
                "session": day.session.isoformat(),
                "equity": str(day.equity),
                "account": _figures(
                    day.account.day, day.account.month_to_date, day.account.since_inception
                ),
                "strategies": {
                    name: {
                        **_figures(figures.day, figures.month_to_date, figures.since_inception),
                        "realised": str(day.realised.get(name, ZERO)),
                        "unrealised": str(day.unrealised.get(name, ZERO)),
                    }
                    for name, figures in day.strategies.items()
                },
            }
            for day in statement.days
        ],
        "breaks": {
            session.isoformat(): {symbol: str(qty) for symbol, qty in found.items()}
            for session, found in statement.breaks.items()
        },
    }


def trade_json(trade: TradeRow) -> dict[str, Any]:
    """One trade row as JSON-ready data (decimals as strings, exact)."""

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return {
        "session": text(trade.session and trade.session.isoformat()),
        "correlation_id": trade.correlation_id,
        "client_order_id": trade.client_order_id,
        "broker_order_id": trade.broker_order_id,
        "symbol": trade.symbol,
        "side": trade.side,
        "qty": str(trade.qty),
        "price": text(trade.price),
        "fees": str(trade.fees),
        "status": trade.status,
        "filled_at": text(trade.filled_at and trade.filled_at.isoformat()),
        "strategies": {
            strategy: {"qty": str(qty), "realised": str(realised)}
            for strategy, (qty, realised) in trade.parts.items()
        },
    }
