"""What a backtest records per session: the account's day, its positions, trades, allocations.

Every amount is a ``Decimal`` as the exchange reported it; the results files keep them exact
(:mod:`.report` converts to floats only for statistics and plots).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = ["AllocationRecord", "DayRecord", "PositionRecord", "SessionRecord", "TradeRecord"]


@dataclass(frozen=True, slots=True)
class DayRecord:
    """The account at the close of one session, after that session's workflow."""

    session: date
    equity: Decimal
    cash: Decimal
    long_market_value: Decimal
    outcome: str
    """``completed`` or ``failed: <step>: <reason>`` (a failed session keeps its account)."""


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One position held at the close of a session."""

    session: date
    symbol: str
    qty: Decimal
    price: Decimal
    market_value: Decimal


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One filled order (its whole filled quantity at its average price)."""

    session: date
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    """``buy`` or ``sell``."""
    qty: Decimal
    price: Decimal
    notional: Decimal
    """``qty * price`` to the cent."""
    fees: Decimal


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """One strategy file's share of the session's consolidated target in one symbol.

    ``weight`` is the file's own weight of the symbol times the file's weight in the mix, so
    a session's rows sum to the consolidated target (1 unless the targets hold cash).
    """

    session: date
    strategy: str
    symbol: str
    weight: Decimal


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Everything one session of a backtest recorded."""

    day: DayRecord
    positions: tuple[PositionRecord, ...]
    trades: tuple[TradeRecord, ...]
    allocations: tuple[AllocationRecord, ...]
