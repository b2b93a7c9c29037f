"""Market data read from a directory of bar files (CSV, gzipped CSV, Parquet).

The directory holds any number of bar files (one per symbol, or many symbols per file) and an
optional ``metadata.json`` describing where each series comes from::

    {"symbols": {"SPY": {"synthetic": true, "source": "...", "method": "..."}, ...}}

Files are read on first use, validated as a whole (a (date, symbol) pair appearing twice, even
in two files, is an error naming both places) and kept in memory; the object is then a
read-only, thread-safe view.
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alchemiser_marketdata.exceptions import InvalidDatasetError
from alchemiser_marketdata.models import Bar, PriceHistory, SymbolInfo
from alchemiser_marketdata.readers import is_data_file, read_bar_file

__all__ = ["METADATA_FILE", "DatasetMarketData", "read_metadata"]

METADATA_FILE = "metadata.json"
"""The optional per-dataset description file."""


class DatasetMarketData:
    """A :class:`~alchemiser_marketdata.port.MarketDataPort` over files in a directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._lock = threading.Lock()
        self._histories: Mapping[str, PriceHistory] | None = None
        self._metadata: Mapping[str, SymbolInfo] | None = None

    @property
    def directory(self) -> Path:
        """The dataset directory."""
        return self._directory

    @property
    def histories(self) -> Mapping[str, PriceHistory]:
        """Every symbol's full history (loads the dataset on first use)."""
        return self._load()

    @property
    def symbols(self) -> frozenset[str]:
        """Every symbol with at least one bar."""
        return frozenset(self._load())

    @property
    def metadata(self) -> Mapping[str, SymbolInfo]:
        """Per-symbol provenance from ``metadata.json`` (empty when there is no such file)."""
        self._load()
        assert self._metadata is not None
        return self._metadata

    def info(self, symbol: str) -> SymbolInfo | None:
        """Provenance of ``symbol`` from ``metadata.json``, if listed."""
        return self.metadata.get(symbol)

    def trading_days(self) -> tuple[date, ...]:
        """Every date on which at least one symbol has a bar, oldest first."""
        days: set[date] = set()
        for history in self._load().values():
            days.update(history.days)
        return tuple(sorted(days))

    def history(self, symbol: str) -> PriceHistory | None:
        """The full history of ``symbol``; ``None`` when the dataset does not have it."""
        return self._load().get(symbol)

    def get_daily_bars(
        self, symbols: Iterable[str], start: date, end: date
    ) -> dict[str, PriceHistory]:
        """Bars dated ``start`` to ``end`` inclusive; symbols without any are left out."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        histories = self._load()
        result: dict[str, PriceHistory] = {}
        for symbol in sorted(set(symbols)):
            history = histories.get(symbol)
            window = None if history is None else history.between(start, end)
            if window is not None:
                result[symbol] = window
        return result

    def close_on(self, symbol: str, day: date) -> Decimal | None:
        """The close of the last bar at or before ``day``; ``None`` if there is none."""
        history = self._load().get(symbol)
        return None if history is None else history.close_on(day)

    def _load(self) -> Mapping[str, PriceHistory]:
        if self._histories is not None:
            return self._histories
        with self._lock:
            if self._histories is None:
                self._metadata = MappingProxyType(read_metadata(self._directory))
                self._histories = MappingProxyType(_read_directory(self._directory))
            return self._histories


def _read_directory(directory: Path) -> dict[str, PriceHistory]:
    if not directory.is_dir():
        raise InvalidDatasetError(f"{directory}: not a directory")
    files = sorted(path for path in directory.iterdir() if is_data_file(path))
    if not files:
        raise InvalidDatasetError(f"{directory}: no bar files (.csv, .csv.gz, .parquet)")
    seen: dict[tuple[str, date], str] = {}
    per_symbol: dict[str, list[Bar]] = defaultdict(list)
    for path in files:
        for bar, where in read_bar_file(path):
            key = (bar.symbol, bar.date)
            first = seen.get(key)
            if first is not None:
                raise InvalidDatasetError(
                    f"{where}: duplicate bar for {bar.symbol} on {bar.date.isoformat()} "
                    f"(first at {first})"
                )
            seen[key] = where
            per_symbol[bar.symbol].append(bar)
    return {
        symbol: PriceHistory(symbol, sorted(bars, key=lambda bar: bar.date))
        for symbol, bars in sorted(per_symbol.items())
    }


def read_metadata(directory: Path) -> dict[str, SymbolInfo]:
    """Parse ``directory/metadata.json``; an absent file gives an empty mapping."""
    path = directory / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidDatasetError(f"{path}: not readable JSON: {err}") from err
    entries = document.get("symbols") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise InvalidDatasetError(f"{path}: expected an object with a 'symbols' object")
    return {symbol: _symbol_info(path, symbol, entry) for symbol, entry in entries.items()}


def _symbol_info(path: Path, symbol: str, entry: Any) -> SymbolInfo:
    where = f"{path}, symbols.{symbol}"
    if not isinstance(entry, dict):
        raise InvalidDatasetError(f"{where}: expected an object")
    synthetic = entry.get("synthetic")
    source = entry.get("source")
    method = entry.get("method")
    if not isinstance(synthetic, bool):
        raise InvalidDatasetError(f"{where}: 'synthetic' must be true or false")
    if not isinstance(source, str) or not source:
        raise InvalidDatasetError(f"{where}: 'source' must be a non-empty string")
    if method is not None and not isinstance(method, str):
        raise InvalidDatasetError(f"{where}: 'method' must be a string")
    return SymbolInfo(symbol=symbol, synthetic=synthetic, source=source, method=method)
