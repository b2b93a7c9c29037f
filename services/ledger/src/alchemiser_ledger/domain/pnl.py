"""Daily P&L of the account and of each strategy file, with month-to-date and since-inception.

* **Account.** A session's P&L is its closing equity less the previous session's; the first
  session is measured against the ``starting_equity`` given (the ledger's inception).
* **Strategy.** A strategy's P&L on a session is its realised P&L booked that session (sells
  and fees, see :mod:`.book`) plus the change of its unrealised P&L at the session's closes
  (the book at that close against the previous one; zero before the first session).
* **Sums.** Month-to-date restarts on the first session of each calendar month;
  since-inception runs over all sessions given.

The identity: the strategies' P&L (the :data:`~.attribution.UNATTRIBUTED` bucket included)
sums to the account's P&L when every cash flow is a trade, i.e. there are no deposits,
withdrawals, dividends or interest, and the book holds exactly the account's positions
(:func:`position_breaks` is empty) with equity valued at the same closes. It is exact up to
rounding: P&L is in cents per strategy and average costs have 6 places, so the sum can miss
the account's figure by a few cents. A deposit or a position the ledger never saw shows as
a gap between the two, by design: the account figure is the broker's truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from itertools import pairwise
from types import MappingProxyType

from alchemiser_ledger.domain._checks import check_decimal, check_name
from alchemiser_ledger.domain.book import StrategyBook
from alchemiser_ledger.domain.decimals import LEDGER_CONTEXT, ZERO
from alchemiser_ledger.exceptions import InvalidLedgerInputError, MissingCloseError

__all__ = ["DailySnapshot", "DayPnl", "PnlFigures", "pnl_by_day", "position_breaks"]


@dataclass(frozen=True, slots=True)
class DailySnapshot:
    """The account at one session's close: equity, cash, positions and closing prices.

    ``positions`` maps symbol to held quantity; ``closes`` gives the closing price of (at
    least) every held symbol. Cash may be negative (margin).
    """

    session: date
    equity: Decimal
    cash: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    closes: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the values and freeze the mappings (copies)."""
        check_decimal(self.equity, "equity")
        check_decimal(self.cash, "cash")
        for symbol, price in self.closes.items():
            check_name(symbol, "close symbol")
            if check_decimal(price, f"close of {symbol}") <= 0:
                raise InvalidLedgerInputError(f"close of {symbol} must be positive: {price}")
        for symbol, qty in self.positions.items():
            check_name(symbol, "position symbol")
            check_decimal(qty, f"position of {symbol}")
            if symbol not in self.closes:
                raise MissingCloseError(f"no close for held {symbol} on {self.session}")
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))
        object.__setattr__(self, "closes", MappingProxyType(dict(self.closes)))


@dataclass(frozen=True, slots=True)
class PnlFigures:
    """P&L of one session, of its month so far and since inception."""

    day: Decimal
    month_to_date: Decimal
    since_inception: Decimal


@dataclass(frozen=True, slots=True)
class DayPnl:
    """One session's P&L: the account's, and each strategy's with its components.

    ``strategies``, ``realised`` and ``unrealised`` are keyed by strategy name;
    ``unrealised`` is the strategy's unrealised P&L at this session's close.
    """

    session: date
    equity: Decimal
    account: PnlFigures
    strategies: Mapping[str, PnlFigures]
    realised: Mapping[str, Decimal]
    unrealised: Mapping[str, Decimal]


def pnl_by_day(
    snapshots: Sequence[DailySnapshot],
    realised_by_day: Mapping[date, Mapping[str, Decimal]],
    books_by_day: Mapping[date, StrategyBook],
    *,
    starting_equity: Decimal,
) -> tuple[DayPnl, ...]:
    """The P&L of every session in ``snapshots`` (see the module docstring for the rules).

    ``snapshots`` are in strictly increasing session order; ``realised_by_day`` is the
    realised P&L per strategy booked on each session (sessions without any may be absent);
    ``books_by_day`` is the strategy book at each session's close (one per session), valued
    at that session's closes. A realised day without a snapshot, a missing book or unordered
    sessions raise :class:`InvalidLedgerInputError`.
    """
    _check_inputs(snapshots, realised_by_day, books_by_day)
    check_decimal(starting_equity, "starting equity")
    days: list[DayPnl] = []
    previous_equity = starting_equity
    previous_unrealised: Mapping[str, Decimal] = {}
    account = PnlFigures(ZERO, ZERO, ZERO)
    strategies: dict[str, PnlFigures] = {}
    previous_session: date | None = None
    with localcontext(LEDGER_CONTEXT):
        for snapshot in snapshots:
            new_month = previous_session is None or (
                (snapshot.session.year, snapshot.session.month)
                != (previous_session.year, previous_session.month)
            )
            realised = dict(sorted(realised_by_day.get(snapshot.session, {}).items()))
            unrealised = books_by_day[snapshot.session].unrealised(snapshot.closes)
            account = _accumulate(account, snapshot.equity - previous_equity, new_month)
            names = sorted(set(strategies) | set(realised) | set(unrealised))
            strategies = {
                name: _accumulate(
                    strategies.get(name, PnlFigures(ZERO, ZERO, ZERO)),
                    realised.get(name, ZERO)
                    + unrealised.get(name, ZERO)
                    - previous_unrealised.get(name, ZERO),
                    new_month,
                )
                for name in names
            }
            days.append(
                DayPnl(
                    session=snapshot.session,
                    equity=snapshot.equity,
                    account=account,
                    strategies=MappingProxyType(strategies),
                    realised=MappingProxyType(realised),
                    unrealised=MappingProxyType(unrealised),
                )
            )
            previous_equity = snapshot.equity
            previous_unrealised = unrealised
            previous_session = snapshot.session
    return tuple(days)


def position_breaks(snapshot: DailySnapshot, book: StrategyBook) -> dict[str, Decimal]:
    """Per symbol, the account's quantity less the book's (all strategies); non-zero only.

    Empty when the book holds exactly the account's positions, the condition under which
    the strategies' P&L sums to the account's (see the module docstring).
    """
    symbols = set(snapshot.positions)
    for held in book.positions.values():
        symbols.update(held)
    breaks: dict[str, Decimal] = {}
    with localcontext(LEDGER_CONTEXT):
        for symbol in sorted(symbols):
            in_book = sum(book.holdings(symbol).values(), ZERO)
            difference = snapshot.positions.get(symbol, ZERO) - in_book
            if difference != 0:
                breaks[symbol] = difference
    return breaks


def _accumulate(before: PnlFigures, day: Decimal, new_month: bool) -> PnlFigures:
    """The figures after a session with P&L ``day``; month-to-date restarts on a new month."""
    month_to_date = day if new_month else before.month_to_date + day
    return PnlFigures(day, month_to_date, before.since_inception + day)


def _check_inputs(
    snapshots: Sequence[DailySnapshot],
    realised_by_day: Mapping[date, Mapping[str, Decimal]],
    books_by_day: Mapping[date, StrategyBook],
) -> None:
    """Raise :class:`InvalidLedgerInputError` unless the inputs line up session by session."""
    sessions = [snapshot.session for snapshot in snapshots]
    if any(later <= earlier for earlier, later in pairwise(sessions)):
        raise InvalidLedgerInputError(f"sessions must be strictly increasing: {sessions}")
    unknown = sorted(set(realised_by_day) - set(sessions))
    if unknown:
        raise InvalidLedgerInputError(f"realised P&L on sessions without a snapshot: {unknown}")
    missing = [session for session in sessions if session not in books_by_day]
    if missing:
        raise InvalidLedgerInputError(f"no strategy book at the close of: {missing}")
    for session, realised in realised_by_day.items():
        for strategy, amount in realised.items():
            check_name(strategy, "strategy")
            check_decimal(amount, f"realised P&L of {strategy} on {session}")
