"""Turn market-data histories into the domain's :class:`MarketData` value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from alchemiser_marketdata import PriceHistory, align_closes
from alchemiser_strategy.domain.market import MarketData

__all__ = ["DEMO_DATASET_DIR", "to_market_data"]

DEMO_DATASET_DIR = Path(__file__).resolve().parents[3] / "data" / "demo"
"""The bundled demo dataset (``services/strategy/data/demo``) in a source checkout or
editable install; it is not inside the wheel, so an image must copy it and point at it."""


def to_market_data(
    histories: Mapping[str, PriceHistory] | Iterable[PriceHistory], *, until: date | None = None
) -> MarketData:
    """Closes of ``histories`` on their union of dates (bars after ``until`` dropped).

    Before a symbol's first bar its closes are NaN (the domain treats it as not yet trading);
    a session it missed later carries the previous close forward (see ``align_closes``).
    """
    aligned = align_closes(histories, until=until)
    return MarketData(aligned.dates, aligned.closes)
