"""DatasetMarketData: reading CSV/Parquet directories, validation messages, queries."""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
import pytest

from alchemiser_marketdata import (
    DatasetMarketData,
    InvalidDatasetError,
    MarketDataError,
    MarketDataPort,
)

HEADER = "date,symbol,open,high,low,close,volume\n"


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def bar_row(day: str, symbol: str, close: str, volume: str = "100") -> str:
    return f"{day},{symbol},{close},{close},{close},{close},{volume}"


@pytest.fixture
def week(tmp_path: Path) -> Path:
    """SPY on Mon 2024-01-08 .. Fri 2024-01-12 and Tue 2024-01-16 (Mon 15th a holiday)."""
    days = ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16"]
    closes = ["470.10", "471.20", "472.30", "473.40", "474.50", "475.60"]
    write_csv(
        tmp_path / "SPY.csv", [bar_row(d, "SPY", c) for d, c in zip(days, closes, strict=True)]
    )
    write_csv(tmp_path / "QQQ.csv", [bar_row(d, "QQQ", "400.00") for d in days[2:]])
    return tmp_path


def test_read_when_one_file_per_symbol_then_each_symbol_has_its_bars(week: Path) -> None:
    data = DatasetMarketData(week)

    assert data.symbols == {"SPY", "QQQ"}
    spy = data.history("SPY")
    assert spy is not None
    assert len(spy) == 6
    assert spy.first_date == date(2024, 1, 8)
    assert spy.bars[0].close == Decimal("470.10")
    assert spy.bars[0].volume == 100
    assert isinstance(data, MarketDataPort)


def test_read_when_many_symbols_in_one_file_then_split_by_symbol(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "all.csv",
        [
            bar_row("2024-01-09", "B", "2"),
            bar_row("2024-01-08", "A", "1"),
            bar_row("2024-01-08", "B", "3"),
            bar_row("2024-01-09", "A", "4"),
        ],
    )

    data = DatasetMarketData(tmp_path)

    a, b = data.history("A"), data.history("B")
    assert a is not None and b is not None
    assert a.close_values == (Decimal("1"), Decimal("4"))
    assert b.days == (date(2024, 1, 8), date(2024, 1, 9))
    assert b.close_values == (Decimal("3"), Decimal("2"))


def test_read_when_columns_reordered_and_extra_then_accepted(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "Symbol,Close,Date,Volume,Open,High,Low,vwap\nAAA,10.5,2024-02-01,7,10,11,9,10.2\n",
        encoding="utf-8",
    )

    bar = DatasetMarketData(tmp_path).histories["AAA"].last_bar

    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal("10"),
        Decimal("11"),
        Decimal("9"),
        Decimal("10.5"),
        7,
    )


def test_read_when_gzipped_csv_then_same_bars(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "z.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(HEADER + bar_row("2024-01-08", "ZZ", "12.34") + "\n")

    assert DatasetMarketData(tmp_path).close_on("ZZ", date(2024, 1, 8)) == Decimal("12.34")


def test_read_when_parquet_then_floats_become_short_decimals(tmp_path: Path) -> None:
    table = pa.table(
        {
            "date": pa.array([date(2024, 1, 8), date(2024, 1, 9)], pa.date32()),
            "symbol": ["PQ", "PQ"],
            "open": [0.1, 1.0],
            "high": [0.3, 2.0],
            "low": [0.1, 0.5],
            "close": [0.2, 1.1],
            "volume": pa.array([5, 6], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "pq.parquet")
    write_csv(tmp_path / "other.csv", [bar_row("2024-01-08", "CSV", "9")])

    data = DatasetMarketData(tmp_path)

    history = data.history("PQ")
    assert history is not None
    assert history.close_values == (Decimal("0.2"), Decimal("1.1"))
    assert history.bars[0].open == Decimal("0.1")
    assert data.symbols == {"PQ", "CSV"}


def test_read_when_parquet_has_string_dates_and_decimals_then_accepted(tmp_path: Path) -> None:
    price = pa.array([Decimal("101.25")], pa.decimal128(10, 2))
    table = pa.table(
        {
            "date": ["2024-03-01"],
            "symbol": ["DEC"],
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": [1.0],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")

    assert DatasetMarketData(tmp_path).close_on("DEC", date(2024, 3, 1)) == Decimal("101.25")


def test_read_when_parquet_value_bad_then_error_names_file_and_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "date": ["2024-03-01", "2024-03-04"],
            "symbol": ["BAD", "BAD"],
            "open": [1.0, 1.0],
            "high": [1.0, 1.0],
            "low": [1.0, 1.0],
            "close": [1.0, None],
            "volume": [1, 1],
        }
    )
    pq.write_table(table, tmp_path / "bad.parquet")

    with pytest.raises(InvalidDatasetError, match=r"bad\.parquet, row 2: column 'close'"):
        DatasetMarketData(tmp_path).symbols  # noqa: B018


def test_read_when_column_missing_then_error_names_file_and_columns(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "short.csv", ["2024-01-08,X,1,1,1,1"], header="date,symbol,open,high,low,close\n"
    )

    with pytest.raises(InvalidDatasetError, match=r"short\.csv: missing column\(s\) volume"):
        DatasetMarketData(tmp_path).symbols  # noqa: B018


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2024-01-09,X,1,1,1,abc,5", r"line 3: column 'close': 'abc' is not a number"),
        ("2024-13-01,X,1,1,1,1,5", r"line 3: column 'date': '2024-13-01' is not an ISO date"),
        ("2024-01-09,X,1,1,1,-2,5", r"line 3: column 'close': '-2' is not a positive price"),
        ("2024-01-09,X,1,1,1,1,2.5", r"line 3: column 'volume': '2.5' is not a non-negative"),
        ("2024-01-09,,1,1,1,1,5", r"line 3: column 'symbol': '' is not a symbol"),
        ("2024-01-09,X,1,1", r"line 3: expected at least 7 fields, got 4"),
        ("2024-01-09,X,1,1,1,NaN,5", r"line 3: column 'close': 'NaN' is not a number"),
        ("2024-01-09,A B,1,1,1,1,5", r"line 3: column 'symbol': 'A B' is not a symbol"),
        ("2024-01-09,X,1,1,1,1,-5", r"line 3: column 'volume': '-5' is not a non-negative"),
        ("2024-01-09,X,1,0,1,1,5", r"line 3: column 'high': '0' is not a positive price"),
    ],
)
def test_read_when_value_unparsable_then_error_names_file_and_line(
    tmp_path: Path, row: str, message: str
) -> None:
    write_csv(tmp_path / "bad.csv", ["2024-01-08,X,1,1,1,1,5", row])

    with pytest.raises(InvalidDatasetError, match=r"bad\.csv, " + message):
        DatasetMarketData(tmp_path).close_on("X", date(2024, 1, 8))


def test_read_when_cells_padded_or_loosely_written_then_same_bars_as_clean_rows(
    tmp_path: Path,
) -> None:
    clean = tmp_path / "clean"
    loose = tmp_path / "loose"
    clean.mkdir()
    loose.mkdir()
    write_csv(clean / "X.csv", ["2024-01-08,X,1.5,2,1,1.75,100", "2024-01-09,X,2,2,2,2,0"])
    write_csv(
        loose / "X.csv",
        [" 2024-01-08 , X ,1.5, 2 ,1,1.75 ,100.0", ",,,,,,", "", "2024-01-09,X,2,2,2,2, 0 "],
    )

    assert DatasetMarketData(loose).histories == DatasetMarketData(clean).histories
    (history,) = DatasetMarketData(loose).histories.values()
    assert [(bar.close, bar.volume) for bar in history] == [(Decimal("1.75"), 100), (2, 0)]


def test_read_when_duplicate_date_symbol_across_files_then_error_names_both(
    tmp_path: Path,
) -> None:
    write_csv(tmp_path / "a.csv", [bar_row("2024-01-08", "DUP", "1")])
    write_csv(
        tmp_path / "b.csv", [bar_row("2024-01-09", "DUP", "1"), bar_row("2024-01-08", "DUP", "2")]
    )

    with pytest.raises(InvalidDatasetError) as caught:
        DatasetMarketData(tmp_path).symbols  # noqa: B018

    text = str(caught.value)
    assert "b.csv, line 3: duplicate bar for DUP on 2024-01-08" in text
    assert "a.csv, line 2" in text


def test_construct_when_directory_missing_then_error_only_on_first_use(tmp_path: Path) -> None:
    data = DatasetMarketData(tmp_path / "absent")

    with pytest.raises(MarketDataError, match="not a directory"):
        data.close_on("SPY", date(2024, 1, 8))


def test_read_when_no_bar_files_then_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing here", encoding="utf-8")

    with pytest.raises(InvalidDatasetError, match="no bar files"):
        DatasetMarketData(tmp_path).symbols  # noqa: B018


def test_load_when_queried_twice_then_files_read_once(week: Path) -> None:
    data = DatasetMarketData(week)
    first = data.histories
    (week / "SPY.csv").write_text("garbage", encoding="utf-8")

    assert data.histories is first
    assert data.close_on("SPY", date(2024, 1, 16)) == Decimal("475.60")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 1, 10), "472.30"),  # a session: its own close
        (date(2024, 1, 13), "474.50"),  # Saturday: Friday's close
        (date(2024, 1, 14), "474.50"),  # Sunday: Friday's close
        (date(2024, 1, 15), "474.50"),  # holiday Monday: Friday's close
        (date(2024, 1, 16), "475.60"),
        (date(2024, 2, 1), "475.60"),  # after the data: the last close
    ],
)
def test_close_on_when_day_given_then_close_of_last_bar_at_or_before(
    week: Path, day: date, expected: str
) -> None:
    assert DatasetMarketData(week).close_on("SPY", day) == Decimal(expected)


def test_close_on_when_before_first_bar_or_unknown_symbol_then_none(week: Path) -> None:
    data = DatasetMarketData(week)

    assert data.close_on("SPY", date(2024, 1, 7)) is None
    assert data.close_on("QQQ", date(2024, 1, 9)) is None
    assert data.close_on("NOPE", date(2024, 1, 9)) is None


def test_get_daily_bars_when_range_given_then_inclusive_and_unknown_left_out(week: Path) -> None:
    data = DatasetMarketData(week)

    bars = data.get_daily_bars(["SPY", "QQQ", "NOPE", "SPY"], date(2024, 1, 9), date(2024, 1, 12))

    assert set(bars) == {"SPY", "QQQ"}
    assert bars["SPY"].days == (
        date(2024, 1, 9),
        date(2024, 1, 10),
        date(2024, 1, 11),
        date(2024, 1, 12),
    )
    assert bars["QQQ"].first_date == date(2024, 1, 10)


def test_get_daily_bars_when_no_bar_in_range_then_symbol_absent(week: Path) -> None:
    bars = DatasetMarketData(week).get_daily_bars(["SPY"], date(2024, 1, 13), date(2024, 1, 15))

    assert bars == {}


def test_trading_days_when_symbols_differ_then_union(week: Path) -> None:
    days = DatasetMarketData(week).trading_days()

    assert days[0] == date(2024, 1, 8)
    assert len(days) == 6


def test_metadata_when_present_then_parsed_per_symbol(week: Path) -> None:
    (week / "metadata.json").write_text(
        json.dumps(
            {
                "symbols": {
                    "SPY": {"synthetic": True, "source": "gspc", "method": "x 0.1"},
                    "QQQ": {"synthetic": False, "source": "vendor"},
                }
            }
        ),
        encoding="utf-8",
    )

    data = DatasetMarketData(week)

    spy = data.info("SPY")
    assert spy is not None and spy.synthetic and spy.method == "x 0.1"
    qqq = data.info("QQQ")
    assert qqq is not None and not qqq.synthetic and qqq.method is None
    assert data.info("NOPE") is None


def test_metadata_when_absent_then_empty(week: Path) -> None:
    assert DatasetMarketData(week).metadata == {}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"symbols": {"SPY": {"source": "x"}}}, r"symbols\.SPY: 'synthetic' must be true or false"),
        ({"symbols": {"SPY": {"synthetic": "yes", "source": "x"}}}, "'synthetic' must be"),
        ({"symbols": {"SPY": {"synthetic": True}}}, "'source' must be a non-empty string"),
        ({"symbols": []}, "expected an object with a 'symbols' object"),
    ],
)
def test_metadata_when_malformed_then_error_names_file_and_key(
    week: Path, document: object, message: str
) -> None:
    (week / "metadata.json").write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(InvalidDatasetError, match=r"metadata\.json.*" + message):
        DatasetMarketData(week).symbols  # noqa: B018


def test_get_daily_bars_when_end_before_start_then_value_error(week: Path) -> None:
    with pytest.raises(ValueError, match="before start"):
        DatasetMarketData(week).get_daily_bars(["SPY"], date(2024, 1, 10), date(2024, 1, 9))
