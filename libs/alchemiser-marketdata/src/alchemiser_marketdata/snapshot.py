"""The identity of the market data a decision was made on: ``market_snapshot_id``.

Two runs that saw the same last bar (date and close) for the same symbols at the same as-of
date get the same id; any changed close, date or symbol changes it. Nothing here reads a
clock or depends on iteration order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from alchemiser_common.events.hashing import canonical_json
from alchemiser_marketdata.models import PriceHistory

__all__ = ["market_snapshot_id"]


def market_snapshot_id(
    histories: Mapping[str, PriceHistory] | Iterable[PriceHistory], as_of: date
) -> str:
    """SHA-256 (hex) of each symbol's last bar at or before ``as_of``: symbol, date, close.

    Entries are sorted by symbol and closes are canonical Decimal strings (``"100.50"`` and
    ``"100.5"`` hash equally); a symbol with no bar by ``as_of`` is recorded with nulls.
    """
    values = histories.values() if isinstance(histories, Mapping) else histories
    entries: list[dict[str, Any]] = []
    for history in values:
        bar = history.bar_on_or_before(as_of)
        entries.append(
            {
                "symbol": history.symbol,
                "date": None if bar is None else bar.date,
                "close": None if bar is None else bar.close,
            }
        )
    entries.sort(key=lambda entry: str(entry["symbol"]))
    symbols = [entry["symbol"] for entry in entries]
    if len(set(symbols)) != len(symbols):
        raise ValueError("market_snapshot_id got the same symbol twice")
    document = {"kind": "market_snapshot", "version": 1, "as_of": as_of, "bars": entries}
    return hashlib.sha256(canonical_json(document)).hexdigest()
