"""Results files, statistics and tearsheet of a backtest (alchemiser_backtest.report)."""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
import pytest

from alchemiser_backtest.records import (
    AllocationRecord,
    DayRecord,
    PositionRecord,
    SessionRecord,
    TradeRecord,
)
from alchemiser_backtest.report import (
    Statistics,
    allocation_by_file,
    allocation_figure,
    compute_statistics,
    daily_returns,
    write_results,
    write_tearsheet,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHARTS = (
    "equity.png",
    "drawdown.png",
    "rolling_volatility.png",
    "monthly_returns.png",
    "allocation.png",
)
SESSIONS = (date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5))
EQUITY = ("100", "110", "99", "108.9")


def day(session: date, equity: str, outcome: str = "completed") -> DayRecord:
    value = Decimal(equity)
    return DayRecord(
        session=session,
        equity=value,
        cash=Decimal("10.00"),
        long_market_value=value - Decimal("10.00"),
        outcome=outcome,
    )


def trade(session: date, side: str, qty: str, price: str, fees: str, n: int = 0) -> TradeRecord:
    return TradeRecord(
        session=session,
        client_order_id=f"c-{session.isoformat()}-{n}",
        broker_order_id=f"b-{session.isoformat()}-{n}",
        symbol="SPY",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        notional=(Decimal(qty) * Decimal(price)).quantize(Decimal("0.01")),
        fees=Decimal(fees),
    )


def four_days() -> list[DayRecord]:
    return [day(session, equity) for session, equity in zip(SESSIONS, EQUITY, strict=True)]


def four_trades() -> list[TradeRecord]:
    return [
        trade(SESSIONS[0], "buy", "0.5", "100.00", "0.05"),
        trade(SESSIONS[2], "sell", "0.3", "100.00", "0.02", n=1),
    ]


def hand_stats(returns: list[float]) -> dict[str, float]:
    """The statistics of daily returns by their textbook formulas (252 sessions a year)."""
    n = len(returns)
    mean = statistics.fmean(returns)
    std = statistics.stdev(returns)
    growth = math.prod(1 + r for r in returns)
    cagr = growth ** (252 / n) - 1
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n) * math.sqrt(252)
    wealth = [1.0]
    for r in returns:
        wealth.append(wealth[-1] * (1 + r))
    peaks = [max(wealth[: i + 1]) for i in range(len(wealth))]
    max_dd = min(w / p - 1 for w, p in zip(wealth, peaks, strict=True))
    return {
        "total_return": growth - 1,
        "cagr": cagr,
        "volatility": std * math.sqrt(252),
        "sharpe": mean / std * math.sqrt(252),
        "sortino": mean * 252 / downside,
        "max_drawdown": max_dd,
        "calmar": cagr / abs(max_dd),
    }


def session_records() -> list[SessionRecord]:
    days = four_days()
    trades = four_trades()
    records = []
    for index, record in enumerate(days):
        positions: tuple[PositionRecord, ...] = ()
        if index >= 1:
            positions = (
                PositionRecord(
                    record.session,
                    "SPY",
                    Decimal("0.20"),
                    Decimal("445.123456"),
                    Decimal("89.02"),
                ),
                PositionRecord(
                    record.session, "<b>QQQ</b>", Decimal("1E-8"), Decimal("1"), Decimal("0E-2")
                ),
            )
        allocations = (
            AllocationRecord(record.session, "momentum.clj", "SPY", Decimal("0.6")),
            AllocationRecord(record.session, "momentum.clj", "QQQ", Decimal("0.1")),
            AllocationRecord(record.session, "defensive.clj", "BIL", Decimal("0.30000")),
        )
        records.append(
            SessionRecord(
                day=record,
                positions=positions,
                trades=tuple(t for t in trades if t.session == record.session),
                allocations=allocations,
            )
        )
    return records


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


# --- daily returns and statistics -----------------------------------------------------------


def test_daily_returns_when_four_sessions_then_three_returns_indexed_by_session() -> None:
    returns = daily_returns(four_days())

    assert list(returns.index) == [pd.Timestamp(s) for s in SESSIONS[1:]]
    assert isinstance(returns.index, pd.DatetimeIndex)
    assert returns.tolist() == pytest.approx([0.1, -0.1, 0.1])


def test_daily_returns_when_days_out_of_order_then_sorted_by_session() -> None:
    returns = daily_returns(list(reversed(four_days())))

    assert returns.tolist() == pytest.approx([0.1, -0.1, 0.1])


def test_compute_statistics_when_hand_computable_series_then_textbook_values() -> None:
    stats = compute_statistics(four_days(), four_trades())
    returns = [0.1, -0.1, 0.1]
    std = statistics.stdev(returns)  # ddof=1
    mean = sum(returns) / 3
    cagr = 1.089 ** (252 / 3) - 1  # empyrical's years: number of returns / 252
    downside = math.sqrt((0.1**2) / 3) * math.sqrt(252)

    assert (stats.start, stats.end, stats.sessions) == (SESSIONS[0], SESSIONS[-1], 4)
    assert (stats.start_equity, stats.end_equity) == (Decimal("100"), Decimal("108.9"))
    assert stats.total_return == pytest.approx(0.089)
    assert stats.max_drawdown == pytest.approx(-0.1)
    assert stats.volatility == pytest.approx(std * math.sqrt(252))
    assert stats.sharpe == pytest.approx(mean / std * math.sqrt(252))
    assert stats.cagr == pytest.approx(cagr)
    assert stats.sortino == pytest.approx(mean * 252 / downside)
    assert stats.calmar == pytest.approx(cagr / 0.1)
    assert isinstance(stats, Statistics)


def test_compute_statistics_when_two_trades_then_turnover_count_and_fees_by_hand() -> None:
    stats = compute_statistics(four_days(), four_trades())
    traded = 50.00 + 30.00
    mean_equity = (100 + 110 + 99 + 108.9) / 4
    years = 3 / 252

    assert stats.trades == 2
    assert stats.fees == Decimal("0.07")
    assert stats.turnover == pytest.approx(traded / mean_equity / years)


def test_compute_statistics_when_risk_free_then_sharpe_uses_per_session_excess() -> None:
    stats = compute_statistics(four_days(), [], risk_free=0.05)
    rf = 1.05 ** (1 / 252) - 1
    excess = [0.1 - rf, -0.1 - rf, 0.1 - rf]

    assert stats.sharpe == pytest.approx(
        statistics.fmean(excess) / statistics.stdev(excess) * math.sqrt(252)
    )


def test_compute_statistics_when_longer_series_then_matches_textbook_formulas() -> None:
    equity = [Decimal("1000")]
    for step in range(40):
        equity.append((equity[-1] * Decimal(1 + ((step * 7) % 5 - 2) / 100)).quantize(Decimal(1)))
    days = [day(date(2024, 1, 1) + timedelta(days=i), str(e)) for i, e in enumerate(equity)]
    returns = [float(b) / float(a) - 1 for a, b in itertools.pairwise(equity)]

    stats = compute_statistics(days, [])
    expected = hand_stats(returns)

    for name, value in expected.items():
        assert getattr(stats, name) == pytest.approx(value), name


def test_compute_statistics_when_benchmark_closes_then_total_return_and_cagr_by_hand() -> None:
    closes = {
        SESSIONS[0]: Decimal("400"),
        SESSIONS[1]: Decimal("404"),
        SESSIONS[2]: Decimal("398"),
        SESSIONS[3]: Decimal("410"),
    }
    stats = compute_statistics(four_days(), [], benchmark="SPY", benchmark_closes=closes)

    assert stats.benchmark == "SPY"
    assert stats.benchmark_total_return == pytest.approx(410 / 400 - 1)
    assert stats.benchmark_cagr == pytest.approx((410 / 400) ** (252 / 3) - 1)


def test_compute_statistics_when_benchmark_misses_sessions_then_forward_filled() -> None:
    closes = {
        date(2023, 12, 29): Decimal("390"),  # before the backtest: gives the first session
        SESSIONS[1]: Decimal("404"),
        date(2024, 1, 6): Decimal("999"),  # after the backtest: ignored
    }
    stats = compute_statistics(four_days(), [], benchmark="SPY", benchmark_closes=closes)

    # Sessions' closes: 390 (carried), 404, 404 (carried), 404 (carried).
    assert stats.benchmark_total_return == pytest.approx(404 / 390 - 1)
    assert stats.benchmark_cagr == pytest.approx((404 / 390) ** (252 / 3) - 1)


def test_compute_statistics_when_benchmark_starts_late_then_measured_from_first_close() -> None:
    closes = {SESSIONS[2]: Decimal("200"), SESSIONS[3]: Decimal("210")}
    stats = compute_statistics(four_days(), [], benchmark="SPY", benchmark_closes=closes)

    assert stats.benchmark_total_return == pytest.approx(0.05)
    assert stats.benchmark_cagr == pytest.approx(1.05**252 - 1)


def test_compute_statistics_when_no_benchmark_then_benchmark_fields_none() -> None:
    stats = compute_statistics(four_days(), [], benchmark="SPY")

    assert stats.benchmark == "SPY"
    assert stats.benchmark_total_return is None
    assert stats.benchmark_cagr is None
    payload = stats.to_json()
    assert payload["benchmark_total_return"] is None
    assert payload["benchmark_cagr"] is None


def test_compute_statistics_when_one_session_then_nan_and_json_none() -> None:
    stats = compute_statistics([day(SESSIONS[0], "100")], [])
    payload = stats.to_json()

    assert stats.sessions == 1
    assert stats.total_return == 0.0
    for name in ("cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown", "turnover"):
        assert math.isnan(getattr(stats, name)), name
        assert payload[name] is None, name
    assert payload["total_return"] == 0.0
    json.dumps(payload, allow_nan=False)


def test_compute_statistics_when_no_trades_then_zero_trades_fees_turnover() -> None:
    stats = compute_statistics(four_days(), [])

    assert stats.trades == 0
    assert stats.fees == Decimal(0)
    assert stats.turnover == 0.0
    assert stats.to_json()["fees"] == "0"


def test_compute_statistics_when_flat_equity_then_zero_volatility_without_crash() -> None:
    days = [day(session, "100") for session in SESSIONS]
    stats = compute_statistics(days, [])
    payload = stats.to_json()

    assert stats.volatility == 0.0
    assert stats.max_drawdown == 0.0
    assert not math.isfinite(stats.sharpe)
    assert not math.isfinite(stats.calmar)
    assert payload["sharpe"] is None
    assert payload["calmar"] is None
    json.dumps(payload, allow_nan=False)


def test_compute_statistics_when_no_sessions_then_value_error() -> None:
    with pytest.raises(ValueError, match="no sessions"):
        compute_statistics([], [])


def test_statistics_to_json_when_values_then_json_ready_types() -> None:
    payload = compute_statistics(four_days(), four_trades()).to_json()

    assert payload["start"] == "2024-01-02"
    assert payload["end"] == "2024-01-05"
    assert payload["start_equity"] == "100"
    assert payload["end_equity"] == "108.9"
    assert payload["fees"] == "0.07"
    assert payload["trades"] == 2
    assert payload["benchmark"] is None
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


# --- results files ---------------------------------------------------------------------------


def test_write_results_when_sessions_then_csv_round_trips_decimals_exactly(
    tmp_path: Path,
) -> None:
    records = session_records()
    paths = write_results(tmp_path / "out", records)

    assert {path.name for path in paths} == {
        f"{name}.{ext}"
        for name in ("equity", "positions", "trades", "allocations")
        for ext in ("csv", "parquet")
    }
    header, equity = read_csv(tmp_path / "out" / "equity.csv")
    assert header == ["session", "equity", "cash", "long_market_value", "outcome"]
    assert [
        (
            date.fromisoformat(row["session"]),
            Decimal(row["equity"]),
            Decimal(row["cash"]),
            Decimal(row["long_market_value"]),
            row["outcome"],
        )
        for row in equity
    ] == [
        (r.day.session, r.day.equity, r.day.cash, r.day.long_market_value, "completed")
        for r in records
    ]

    _, positions = read_csv(tmp_path / "out" / "positions.csv")
    expected_positions = [p for r in records for p in r.positions]
    assert [
        PositionRecord(
            date.fromisoformat(row["session"]),
            row["symbol"],
            Decimal(row["qty"]),
            Decimal(row["price"]),
            Decimal(row["market_value"]),
        )
        for row in positions
    ] == expected_positions
    assert positions[0]["price"] == "445.123456"
    assert positions[0]["qty"] == "0.20"  # scale kept

    _, trades = read_csv(tmp_path / "out" / "trades.csv")
    assert [
        TradeRecord(
            date.fromisoformat(row["session"]),
            row["client_order_id"],
            row["broker_order_id"],
            row["symbol"],
            row["side"],
            Decimal(row["qty"]),
            Decimal(row["price"]),
            Decimal(row["notional"]),
            Decimal(row["fees"]),
        )
        for row in trades
    ] == four_trades()

    _, allocations = read_csv(tmp_path / "out" / "allocations.csv")
    assert [
        AllocationRecord(
            date.fromisoformat(row["session"]),
            row["strategy"],
            row["symbol"],
            Decimal(row["weight"]),
        )
        for row in allocations
    ] == [a for r in records for a in r.allocations]


def test_write_results_when_sessions_then_parquet_has_same_rows_and_exact_values(
    tmp_path: Path,
) -> None:
    records = session_records()
    write_results(tmp_path, records)

    for name in ("equity", "positions", "trades", "allocations"):
        _, rows = read_csv(tmp_path / f"{name}.csv")
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.num_rows == len(rows), name
        assert table.to_pylist() == [
            {**row, "session": date.fromisoformat(row["session"])} for row in rows
        ], name
    equity = pq.read_table(tmp_path / "equity.parquet").to_pylist()
    assert [Decimal(row["equity"]) for row in equity] == [r.day.equity for r in records]


def test_write_results_when_no_trades_or_allocations_then_header_only_files(
    tmp_path: Path,
) -> None:
    records = [SessionRecord(day(SESSIONS[0], "100"), (), (), ())]
    write_results(tmp_path, records)

    assert (tmp_path / "trades.csv").read_text(encoding="utf-8") == (
        "session,client_order_id,broker_order_id,symbol,side,qty,price,notional,fees\n"
    )
    assert (tmp_path / "allocations.csv").read_text(encoding="utf-8") == (
        "session,strategy,symbol,weight\n"
    )
    assert (tmp_path / "positions.csv").read_text(encoding="utf-8") == (
        "session,symbol,qty,price,market_value\n"
    )
    trades = pq.read_table(tmp_path / "trades.parquet")
    assert trades.num_rows == 0
    assert trades.column_names[-1] == "fees"
    assert pq.read_table(tmp_path / "equity.parquet").num_rows == 1


def test_write_results_when_decimal_has_exponent_then_csv_fixed_point(tmp_path: Path) -> None:
    record = DayRecord(SESSIONS[0], Decimal("1E+3"), Decimal("0E-8"), Decimal("1000"), "ok")
    write_results(tmp_path, [SessionRecord(record, (), (), ())])

    _, rows = read_csv(tmp_path / "equity.csv")
    assert rows[0]["equity"] == "1000"
    assert rows[0]["cash"] == "0.00000000"
    assert Decimal(rows[0]["equity"]) == record.equity


# --- tearsheet -------------------------------------------------------------------------------


def test_write_tearsheet_when_sessions_then_files_stats_and_html(tmp_path: Path) -> None:
    records = session_records()
    closes = {SESSIONS[0]: Decimal("400"), SESSIONS[3]: Decimal("410")}
    html_path = write_tearsheet(
        tmp_path / "sheet",
        records,
        title="Momentum <mix>",
        benchmark="SPY",
        benchmark_closes=closes,
        costs="5 bps slippage & 0.01 per share",
    )

    assert html_path == tmp_path / "sheet" / "tearsheet.html"
    for chart in CHARTS:
        assert (tmp_path / "sheet" / chart).read_bytes()[:8] == PNG_MAGIC, chart
    expected = compute_statistics(
        [r.day for r in records],
        [t for r in records for t in r.trades],
        benchmark="SPY",
        benchmark_closes=closes,
    )
    assert json.loads((tmp_path / "sheet" / "stats.json").read_text(encoding="utf-8")) == (
        json.loads(json.dumps(expected.to_json()))
    )

    html = html_path.read_text(encoding="utf-8")
    assert "Momentum &lt;mix&gt;" in html  # autoescaped
    assert "2024-01-02 to 2024-01-05 (4 sessions)" in html
    assert "5 bps slippage &amp; 0.01 per share" in html
    assert f"{expected.total_return * 100:.2f}%" in html  # 8.90%
    assert "8.90%" in html
    assert f"{expected.cagr * 100:.2f}%" in html
    assert f"{expected.volatility * 100:.2f}%" in html
    assert f"{expected.sharpe:.2f}" in html
    assert f"{expected.sortino:.2f}" in html
    assert "-10.00%" in html  # max drawdown
    assert "2.50%" in html  # benchmark total return, 410 / 400 - 1
    assert "<th>SPY</th>" in html
    assert "0.07" in html  # fees
    for chart in CHARTS:
        assert f'src="{chart}"' in html
    assert "445.123456" in html  # last session's positions
    assert "&lt;b&gt;QQQ&lt;/b&gt;" in html
    assert "<b>QQQ</b>" not in html


def test_write_tearsheet_when_one_session_then_placeholders_and_null_stats(
    tmp_path: Path,
) -> None:
    records = [SessionRecord(day(SESSIONS[0], "100"), (), (), ())]
    html_path = write_tearsheet(tmp_path, records, title="One day")

    for chart in CHARTS:
        assert (tmp_path / chart).read_bytes()[:8] == PNG_MAGIC, chart
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["sessions"] == 1
    assert stats["sharpe"] is None
    assert stats["max_drawdown"] is None
    html = html_path.read_text(encoding="utf-8")
    assert "n/a" in html
    assert "No positions." in html
    assert "Costs:" not in html


def test_write_tearsheet_when_no_trades_and_long_run_then_all_charts_drawn(
    tmp_path: Path,
) -> None:
    start = date(2023, 11, 1)
    records = []
    equity = Decimal("1000")
    for index in range(80):
        equity = (equity * Decimal(1 + ((index * 3) % 7 - 3) / 200)).quantize(Decimal("0.01"))
        session = start + timedelta(days=index)
        records.append(
            SessionRecord(
                day(session, str(equity)),
                (),
                (),
                (AllocationRecord(session, "a.clj", "SPY", Decimal("1")),) if index % 2 else (),
            )
        )
    closes = {start + timedelta(days=i): Decimal(300 + i) for i in range(0, 80, 3)}
    html_path = write_tearsheet(
        tmp_path, records, title="No trades", benchmark="SPY", benchmark_closes=closes
    )

    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["trades"] == 0
    assert stats["turnover"] == 0.0
    assert stats["benchmark_total_return"] == pytest.approx(378 / 300 - 1)
    for chart in CHARTS:
        assert (tmp_path / chart).read_bytes()[:8] == PNG_MAGIC, chart
    assert "No trades" in html_path.read_text(encoding="utf-8")


def test_write_tearsheet_when_no_sessions_then_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no sessions"):
        write_tearsheet(tmp_path, [], title="Nothing")


def test_allocation_by_file_when_files_hold_several_symbols_then_each_files_shares() -> None:
    first, second, third = SESSIONS[:3]
    allocations = [
        AllocationRecord(first, "b", "SPY", Decimal("0.15")),
        AllocationRecord(first, "b", "QQQ", Decimal("0.05")),
        AllocationRecord(first, "a", "TLT", Decimal("0.8")),
        AllocationRecord(second, "b", "QQQ", Decimal("0.2")),
        AllocationRecord(second, "a", "TLT", Decimal("0.3")),
        AllocationRecord(second, "a", "TLT", Decimal("0.1")),  # listed twice: the weights add
        AllocationRecord(second, "a", "BIL", Decimal("0.4")),
        AllocationRecord(third, "a", "BIL", Decimal("0.8")),  # "b" failed on the third session
    ]

    shares = allocation_by_file(allocations)

    assert list(shares) == ["a", "b"]
    assert list(shares["a"].columns) == ["BIL", "TLT"]
    assert list(shares["b"].columns) == ["QQQ", "SPY"]
    assert list(shares["a"].index.date) == [first, second, third]
    assert shares["a"].to_numpy().tolist() == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    assert shares["b"].to_numpy().ravel().tolist() == pytest.approx([0.25, 0.75, 1, 0, 0, 0])
    assert allocation_by_file([]) == {}


def test_allocation_figure_when_two_files_then_a_panel_each_with_its_symbols() -> None:
    allocations = [
        AllocationRecord(session, strategy, symbol, Decimal(weight))
        for session in SESSIONS
        for strategy, symbol, weight in (
            ("a", "TLT", "0.5"),
            ("b", "SPY", "0.3"),
            ("b", "QQQ", "0.2"),
        )
    ]

    figure = allocation_figure(allocations)

    panels = [axes for axes in figure.axes if axes.get_title(loc="left")]
    assert [axes.get_title(loc="left") for axes in panels] == ["a", "b"]
    legends = [axes.get_legend() for axes in panels]
    assert None not in legends
    assert [[text.get_text() for text in legend.get_texts()] for legend in legends if legend] == [
        ["TLT"],
        ["QQQ", "SPY"],
    ]
    assert [axes.get_ylim() for axes in panels] == [(0.0, 100.0), (0.0, 100.0)]
