"""The market-data port: what the strategy service and the simulated broker need to read.

Implemented by :class:`~alchemiser_marketdata.dataset.DatasetMarketData` (files on
disk) and by the strategy service's Alpaca bars adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

from alchemiser_marketdata.models import PriceHistory

__all__ = ["MarketDataPort"]


@runtime_checkable
class MarketDataPort(Protocol):
    """A source of daily bars.

    Errors: :class:`~alchemiser_marketdata.exceptions.MarketDataUnavailableError`
    (transient: retry later) or another
    :class:`~alchemiser_marketdata.exceptions.MarketDataError` (permanent).
    """

    def get_daily_bars(
        self, symbols: Iterable[str], start: date, end: date
    ) -> dict[str, PriceHistory]:
        """Daily bars dated ``start`` to ``end`` inclusive, keyed by symbol.

        A requested symbol with no bar in the range is absent from the result; the caller
        decides whether that is an error (compare the keys with what it asked for).
        """
        ...

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        """The close of ``symbol``'s last bar at or before ``day``; ``None`` if there is none."""
        ...
