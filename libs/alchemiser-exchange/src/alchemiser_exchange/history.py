"""An account's equity at each session's close, replayed from its activities (pure).

The exchange records every change of an account's cash or positions as an *activity* (table
``exchange_activity``): each fill (the position moves by its quantity, cash by
``cents(qty * price)`` and its commission) and each operator journal (``set_cash``,
``set_position``). :func:`replay` starts from the starting cash and no positions and, for
each trading session, applies the activities of sessions up to it (in the order they
happened), then values what is held at that session's close:

* ``equity = cents(cash + sum(cents(qty * close)))``, as ``GET /v2/account`` values it;
* ``profit_loss = equity - previous equity - transfers``: the previous point's equity (the
  starting cash for the first session); journals are deposits, not profit, so the value they
  moved in (cash, or shares at the session's close) is left out;
* ``profit_loss_pct = profit_loss / (previous equity + transfers)``.

:func:`resolve_window` turns the query parameters of Alpaca's ``GET
/v2/account/portfolio/history`` (``period``, ``start``, ``end``/``date_end``, ``timeframe``)
into the sessions to report, as far as they mean anything for daily bars.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from alchemiser_exchange.errors import InvalidOrderError
from alchemiser_exchange.rules import cents

__all__ = [
    "DEFAULT_PERIOD",
    "TIMEFRAME",
    "Activity",
    "EquityPoint",
    "replay",
    "resolve_window",
]

TIMEFRAME = "1D"
"""The only resolution the exchange reports: one point per session (its bars are daily)."""

DEFAULT_PERIOD = "1M"
"""Alpaca's default ``period``."""

_NEW_YORK = ZoneInfo("America/New_York")
_PERIOD = re.compile(r"([1-9][0-9]{0,3})([DWMA])", re.IGNORECASE)
_INTRADAY_REPORTING = frozenset({"market_hours", "extended_hours", "continuous"})
_PNL_RESET = frozenset({"per_day", "no_reset"})

PriceOf = Callable[[str, date], Decimal | None]
"""``price(symbol, session)``: the close a position is valued at, ``None`` when unknown."""


@dataclass(frozen=True, slots=True)
class Activity:
    """One stored change of an account's cash or positions (a fill or a journal)."""

    session: date
    symbol: str | None
    position_change: Decimal
    cash_change: Decimal
    price: Decimal | None
    transfer: bool
    """A journal (the operator moved cash or shares in or out), not a trade."""


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The account at one session's close."""

    session: date
    equity: Decimal
    cash: Decimal
    profit_loss: Decimal
    """Equity less the previous close's equity (the starting cash before the first session),
    less the session's ``transfers``."""
    transfers: Decimal = Decimal(0)
    """What the session's journals moved in (negative: out), valued at its close."""

    @property
    def base(self) -> Decimal:
        """What the session's profit or loss is measured against: the previous close's
        equity plus the session's transfers."""
        return self.equity - self.profit_loss

    @property
    def profit_loss_pct(self) -> Decimal | None:
        """``profit_loss / base`` (``None`` when the base is 0)."""
        return self.profit_loss / self.base if self.base else None


def replay(
    starting_cash: Decimal,
    activities: Sequence[Activity],
    sessions: Sequence[date],
    price: PriceOf,
) -> list[EquityPoint]:
    """The account at the close of each of ``sessions`` (ascending).

    ``activities`` in the order to apply them (by session, then as they happened). A
    session's point includes every activity up to it: one dated a day without trading counts
    in the next session's point. A position without a known close is valued at its last
    fill or journal price (as ``Exchange.positions`` values it at its entry price).
    """
    cash, previous = starting_cash, cents(starting_cash)
    held: dict[str, Decimal] = {}
    last_price: dict[str, Decimal] = {}
    points: list[EquityPoint] = []
    pending = 0

    def mark(symbol: str, session: date) -> Decimal:
        close = price(symbol, session)
        return close if close is not None else last_price.get(symbol, Decimal(0))

    for session in sessions:
        transfers = Decimal(0)
        while pending < len(activities) and activities[pending].session <= session:
            activity = activities[pending]
            pending += 1
            cash += activity.cash_change
            symbol = activity.symbol
            if symbol is not None:
                held[symbol] = held.get(symbol, Decimal(0)) + activity.position_change
                if activity.price is not None:
                    last_price[symbol] = activity.price
            if activity.transfer:
                transfers += activity.cash_change
                if symbol is not None:
                    transfers += cents(activity.position_change * mark(symbol, session))
        value = sum(
            (cents(qty * mark(symbol, session)) for symbol, qty in held.items() if qty),
            Decimal(0),
        )
        equity = cents(cash + value)
        points.append(
            EquityPoint(session, equity, cents(cash), equity - previous - transfers, transfers)
        )
        previous = equity
    return points


def _moment(name: str, text: str) -> date:
    """A date (``YYYY-MM-DD``) or an RFC 3339 timestamp, as its New York date."""
    try:
        if len(text) == len("YYYY-MM-DD"):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOrderError(
            f"invalid {name} {text!r}: expected YYYY-MM-DD or an RFC 3339 timestamp"
        ) from None
    if moment.tzinfo is None:  # Alpaca asks for a zone; the market's is the natural guess
        return moment.date()
    return moment.astimezone(_NEW_YORK).date()


def _shifted(day: date, amount: int, unit: str, sign: int) -> date:
    """``day`` moved ``amount`` ``unit``s (D, W, M, A) forward (``sign`` 1) or back (-1);
    beyond the calendar's range, its end."""
    try:
        if unit in "DW":
            return day + timedelta(days=sign * amount * (7 if unit == "W" else 1))
        months = day.year * 12 + day.month - 1 + sign * amount * (12 if unit == "A" else 1)
        year, month = divmod(months, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(day.day, last))
    except (ValueError, OverflowError):
        return date.max if sign > 0 else date.min


def _choice(name: str, value: str | None, allowed: frozenset[str]) -> None:
    if value is not None and value not in allowed:
        raise InvalidOrderError(f"invalid {name} {value!r}: expected one of {sorted(allowed)}")


def resolve_window(
    *,
    current: date,
    period: str | None = None,
    timeframe: str | None = None,
    start: str | None = None,
    end: str | None = None,
    date_end: str | None = None,
    intraday_reporting: str | None = None,
    pnl_reset: str | None = None,
) -> tuple[date, date]:
    """The first and last session (inclusive) a portfolio-history query asks for.

    Alpaca's rules, for daily points: ``end`` (or the older ``date_end``) defaults to the
    account's ``current`` session; a ``period`` of ``<n>D|W|M|A`` (days, weeks, months,
    years; default 1M) reaches back from it, ``(end - period, end]``, or forward from a given
    ``start``, ``[start, start + period)``; at most two of ``start``, ``end`` and ``period``.
    A timestamp counts as its date in New York. ``timeframe`` must be ``1D``;
    ``intraday_reporting`` and ``pnl_reset`` are checked and ignored (they concern
    intraday points). Raises ``InvalidOrderError`` (422) naming the parameter.
    """
    if timeframe is not None and timeframe.upper() != TIMEFRAME:
        raise InvalidOrderError(
            f"invalid timeframe {timeframe!r}: the exchange has daily bars only ({TIMEFRAME})"
        )
    _choice("intraday_reporting", intraday_reporting, _INTRADAY_REPORTING)
    _choice("pnl_reset", pnl_reset, _PNL_RESET)
    if end is not None and date_end is not None:
        raise InvalidOrderError("invalid end: give end or date_end, not both")
    end = end if end is not None else date_end
    if start is not None and end is not None and period is not None:
        raise InvalidOrderError("invalid period: only two of start, end and period can be given")
    match = _PERIOD.fullmatch(period or DEFAULT_PERIOD)
    if match is None:
        raise InvalidOrderError(f"invalid period {period!r}: expected <number><D|W|M|A>, e.g. 1M")
    amount, unit = int(match[1]), match[2].upper()
    first = None if start is None else _moment("start", start)
    last = None if end is None else _moment("end", end)
    if first is not None and last is None:
        last = current if period is None else _shifted(first, amount, unit, 1) - timedelta(days=1)
    if last is None:
        last = current
    if first is None:
        first = _shifted(last, amount, unit, -1) + timedelta(days=1)
    return first, last
