"""Parse bar files (CSV, gzipped CSV, Parquet) into :class:`Bar` values, naming bad rows.

Every file has at least the columns ``date,symbol,open,high,low,close,volume`` (any order,
case-insensitive, extra columns ignored) and holds one or many symbols. Dates are ISO
``YYYY-MM-DD`` (Parquet may also use date or timestamp columns); prices are decimal numbers
(Parquet floats are read through their shortest repr, so ``0.1`` stays ``Decimal("0.1")``);
volume is a non-negative whole number.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from alchemiser_marketdata.exceptions import InvalidDatasetError
from alchemiser_marketdata.models import Bar

__all__ = ["BAR_COLUMNS", "DATA_SUFFIXES", "LocatedBar", "is_data_file", "read_bar_file"]

BAR_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "volume")
"""The columns every bar file must have."""

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
"""File name endings read as bar files; anything else in a dataset directory is ignored."""

LocatedBar = tuple[Bar, str]
"""A bar and where it was read (``"file.csv, line 7"``), for error messages."""


def is_data_file(path: Path) -> bool:
    """Whether ``path`` names a bar file by its ending."""
    name = path.name.lower()
    return path.is_file() and name.endswith(DATA_SUFFIXES)


def read_bar_file(path: Path) -> list[LocatedBar]:
    """Every bar in ``path`` with its location; raises ``InvalidDatasetError`` on bad data."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return list(_parquet_bars(path))
        if name.endswith(".csv.gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as text:
                return list(_csv_bars(path, text))
        with path.open(encoding="utf-8-sig", newline="") as text:
            return list(_csv_bars(path, text))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InvalidDatasetError(f"{path}: cannot read: {err}") from err


def _column_positions(path: Path, header: Sequence[str]) -> dict[str, int]:
    names = [column.strip().lower() for column in header]
    missing = [column for column in BAR_COLUMNS if column not in names]
    if missing:
        raise InvalidDatasetError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(names) or 'none'})"
        )
    return {column: names.index(column) for column in BAR_COLUMNS}


def _csv_bars(path: Path, text: Iterable[str]) -> Iterator[LocatedBar]:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise InvalidDatasetError(f"{path}: empty file (no header row)")
    positions = _column_positions(path, header)
    width = max(positions.values()) + 1
    day, symbol, open_, high, low, close, volume = (positions[c] for c in BAR_COLUMNS)
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        try:  # the common row, with nothing to strip or convert: Bar checks the prices
            name = row[symbol]
            bar: Bar | None = Bar(
                date=date.fromisoformat(row[day]),
                symbol=name,
                open=Decimal(row[open_]),
                high=Decimal(row[high]),
                low=Decimal(row[low]),
                close=Decimal(row[close]),
                volume=int(row[volume]),
            )
            if name.split() != [name]:  # whitespace inside: not a symbol
                bar = None
        except (IndexError, ValueError, InvalidOperation):
            bar = None
        if bar is None:  # anything else: the careful reading, which names what is wrong
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < width:
                raise InvalidDatasetError(
                    f"{where}: expected at least {width} fields, got {len(row)}"
                )
            bar = _make_bar(where, {column: row[index] for column, index in positions.items()})
        yield bar, where


def _parquet_bars(path: Path) -> Iterator[LocatedBar]:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InvalidDatasetError(f"{path}: not a readable Parquet file: {err}") from err
    positions = _column_positions(path, table.column_names)
    columns = {column: table.column(index).to_pylist() for column, index in positions.items()}
    for row in range(table.num_rows):
        where = f"{path}, row {row + 1}"
        values = {column: cells[row] for column, cells in columns.items()}
        yield _make_bar(where, values), where


def _make_bar(where: str, values: dict[str, Any]) -> Bar:
    symbol = _symbol(where, values["symbol"])
    prices = {column: _price(where, column, values[column]) for column in BAR_COLUMNS[2:6]}
    try:
        return Bar(
            date=_date(where, values["date"]),
            symbol=symbol,
            volume=_volume(where, values["volume"]),
            **prices,
        )
    except ValueError as err:
        raise InvalidDatasetError(f"{where}: {err}") from None


def _symbol(where: str, raw: Any) -> str:
    text = "" if raw is None else str(raw).strip()
    if not text or any(character.isspace() for character in text):
        raise InvalidDatasetError(f"{where}: column 'symbol': {raw!r} is not a symbol")
    return text


def _date(where: str, raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise InvalidDatasetError(
            f"{where}: column 'date': {raw!r} is not an ISO date (YYYY-MM-DD)"
        ) from None


def _decimal(where: str, column: str, raw: Any) -> Decimal:
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, bool) or raw is None:
        value = Decimal("NaN")
    elif isinstance(raw, float | int):
        value = Decimal(repr(raw))
    else:
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            value = Decimal("NaN")
    if not value.is_finite():
        raise InvalidDatasetError(f"{where}: column '{column}': {raw!r} is not a number")
    return value


def _price(where: str, column: str, raw: Any) -> Decimal:
    value = _decimal(where, column, raw)
    if value <= 0:
        raise InvalidDatasetError(f"{where}: column '{column}': {raw!r} is not a positive price")
    return value


def _volume(where: str, raw: Any) -> int:
    value = _decimal(where, "volume", raw)
    if value < 0 or value != value.to_integral_value():
        raise InvalidDatasetError(
            f"{where}: column 'volume': {raw!r} is not a non-negative whole number"
        )
    return int(value)
