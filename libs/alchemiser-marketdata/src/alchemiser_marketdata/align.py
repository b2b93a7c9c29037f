"""Closes of many symbols on one shared date axis, the shape indicator code consumes.

The axis is the union of every symbol's bar dates. Before a symbol's first bar its closes
are NaN; a session it missed afterwards (a halt, a feed gap, no bar yet today) carries its
previous close forward, and ``filled`` counts those so a caller can log or refuse stale data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from alchemiser_marketdata.models import PriceHistory

__all__ = ["AlignedCloses", "align_closes"]


@dataclass(frozen=True, slots=True)
class AlignedCloses:
    """Closes per symbol aligned to ``dates`` (read-only float64 arrays, NaN before start)."""

    dates: tuple[date, ...]
    closes: Mapping[str, npt.NDArray[np.float64]]
    filled: Mapping[str, int]


def align_closes(
    histories: Mapping[str, PriceHistory] | Iterable[PriceHistory],
    *,
    until: date | None = None,
) -> AlignedCloses:
    """Align ``histories`` on the union of their dates (only bars dated ``until`` or earlier)."""
    values = list(histories.values() if isinstance(histories, Mapping) else histories)
    if until is not None:
        values = [h for h in (history.between(date.min, until) for history in values) if h]
    axis = (
        np.unique(np.concatenate([history.dates for history in values]))
        if values
        else np.array([], dtype="datetime64[D]")
    )
    closes: dict[str, npt.NDArray[np.float64]] = {}
    filled: dict[str, int] = {}
    for history in sorted(values, key=lambda history: history.symbol):
        if history.symbol in closes:
            raise ValueError(f"{history.symbol}: given twice")
        if len(history) == len(axis):  # a bar on every date of the axis: nothing to carry
            closes[history.symbol] = history.closes
            filled[history.symbol] = 0
            continue
        raw = np.full(len(axis), np.nan, dtype=np.float64)
        raw[np.searchsorted(axis, history.dates)] = history.closes
        present = np.isfinite(raw)
        carried = np.maximum.accumulate(np.where(present, np.arange(len(raw)), 0))
        series = raw[carried]
        first = int(np.argmax(present))
        filled[history.symbol] = int(len(raw) - first - int(present.sum()))
        series.setflags(write=False)
        closes[history.symbol] = series
    return AlignedCloses(
        dates=tuple(axis.tolist()),
        closes=MappingProxyType(closes),
        filled=MappingProxyType(filled),
    )
