"""Results files and the tearsheet of a backtest.

* :func:`write_results` writes the recorded sessions as tables (CSV and Parquet), every amount
  kept as the exact ``Decimal`` string it was recorded as;
* :func:`compute_statistics` turns the daily equity (and optionally a benchmark's closes) into
  :class:`Statistics` with `empyrical`_ (daily returns, 252 sessions a year);
* :func:`write_tearsheet` writes ``stats.json``, the charts as PNG files and ``tearsheet.html``.

Amounts become floats only for the statistics and the charts. Charts are drawn on
:class:`matplotlib.figure.Figure` objects (the Agg renderer), never through pyplot's global state.

.. _empyrical: https://github.com/stefan-jansen/empyrical-reloaded
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import empyrical as ep  # type: ignore[import-untyped,unused-ignore]
import jinja2
import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from alchemiser_backtest.records import (
    AllocationRecord,
    DayRecord,
    PositionRecord,
    SessionRecord,
    TradeRecord,
)

__all__ = [
    "ALLOCATION_CHART",
    "DRAWDOWN_CHART",
    "EQUITY_CHART",
    "MONTHLY_RETURNS_CHART",
    "ROLLING_VOLATILITY_CHART",
    "ROLLING_VOLATILITY_WINDOW",
    "SESSIONS_PER_YEAR",
    "STATS_FILE",
    "TEARSHEET_FILE",
    "Statistics",
    "allocation_by_file",
    "allocation_figure",
    "compute_statistics",
    "daily_returns",
    "write_results",
    "write_tearsheet",
]

SESSIONS_PER_YEAR: Final = 252
"""Sessions in a year, for annualising (empyrical's daily convention)."""

ROLLING_VOLATILITY_WINDOW: Final = 63
"""Sessions in the rolling-volatility window (about a quarter)."""

STATS_FILE: Final = "stats.json"
"""The statistics as JSON, in the tearsheet's directory."""

TEARSHEET_FILE: Final = "tearsheet.html"
"""The tearsheet page, in its directory."""

EQUITY_CHART: Final = "equity.png"
"""Equity curve (with the benchmark rebased to the starting equity when given)."""

DRAWDOWN_CHART: Final = "drawdown.png"
"""Drawdown from the running peak of equity."""

ROLLING_VOLATILITY_CHART: Final = "rolling_volatility.png"
"""Annualised volatility over a rolling window of :data:`ROLLING_VOLATILITY_WINDOW` sessions."""

MONTHLY_RETURNS_CHART: Final = "monthly_returns.png"
"""Heatmap of monthly returns, years by months."""

ALLOCATION_CHART: Final = "allocation.png"
"""Stacked area of each strategy file's total target weight per session."""

_CHARTS: Final = (
    EQUITY_CHART,
    DRAWDOWN_CHART,
    ROLLING_VOLATILITY_CHART,
    MONTHLY_RETURNS_CHART,
    ALLOCATION_CHART,
)

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass(frozen=True, slots=True)
class Statistics:
    """Summary statistics of a backtest (and of its benchmark when one was given).

    Ratios and fractions are floats (``0.089`` is 8.9 %); a statistic that is undefined for
    the data (one session, zero volatility, no drawdown) is NaN or infinite, as empyrical
    returns it, and ``None`` in :meth:`to_json`.
    """

    start: date
    """First session."""
    end: date
    """Last session."""
    sessions: int
    """Number of sessions (the returns are one fewer)."""
    start_equity: Decimal
    """Equity at the close of the first session."""
    end_equity: Decimal
    """Equity at the close of the last session."""
    total_return: float
    """Compounded return from the first session's close to the last one's."""
    cagr: float
    """Compound annual growth rate, with ``number of returns / 252`` years."""
    volatility: float
    """Annualised standard deviation of the daily returns."""
    sharpe: float
    """Annualised Sharpe ratio (daily returns over the risk-free rate)."""
    sortino: float
    """Annualised Sortino ratio (required return: the risk-free rate)."""
    calmar: float
    """CAGR over the absolute maximum drawdown (NaN without a drawdown)."""
    max_drawdown: float
    """Largest fall from a running peak, a negative fraction (``-0.1`` is 10 %)."""
    turnover: float
    """Annualised turnover: traded notional / mean equity / years."""
    trades: int
    """Number of filled orders."""
    fees: Decimal
    """Sum of the fees of the filled orders."""
    benchmark: str | None
    """The benchmark's name (its symbol), or ``None``."""
    benchmark_total_return: float | None
    """The benchmark's return over the same sessions, or ``None`` without its closes."""
    benchmark_cagr: float | None
    """The benchmark's CAGR over the same sessions, or ``None`` without its closes."""

    def to_json(self) -> dict[str, object]:
        """The statistics as a JSON-ready mapping, keyed by field name.

        Dates are ISO strings, ``Decimal`` amounts their exact strings, NaN and infinite
        floats ``None``.
        """
        return {field.name: _json_value(getattr(self, field.name)) for field in fields(self)}


def _json_value(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def daily_returns(days: Sequence[DayRecord]) -> pd.Series:
    """The daily returns of the account's equity.

    A float series indexed by the sessions (a ``DatetimeIndex``, in session order); the first
    session has no return and is dropped, so one session gives an empty series.
    """
    equity = _equity_series(days)
    return equity.pct_change(fill_method=None).iloc[1:].rename("returns")


def compute_statistics(
    days: Sequence[DayRecord],
    trades: Iterable[TradeRecord],
    *,
    benchmark: str | None = None,
    benchmark_closes: Mapping[date, Decimal] | None = None,
    risk_free: float = 0.0,
) -> Statistics:
    """Statistics of a backtest from its daily records and its filled orders.

    ``risk_free`` is the annual risk-free rate; it is compounded down to a per-session rate
    for the Sharpe ratio and as the Sortino ratio's required return. ``benchmark_closes``
    (by date; ``benchmark`` names it) are aligned on the sessions, a session without a close
    taking the latest earlier one; sessions before its first close are left out of the
    benchmark's figures.

    Raises:
        ValueError: without any session.
    """
    ordered = _ordered_days(days)
    returns = daily_returns(ordered)
    trade_list = list(trades)
    per_session_rf = (1.0 + risk_free) ** (1.0 / SESSIONS_PER_YEAR) - 1.0

    years = len(returns) / SESSIONS_PER_YEAR
    traded = math.fsum(abs(float(trade.notional)) for trade in trade_list)
    mean_equity = math.fsum(float(day.equity) for day in ordered) / len(ordered)
    turnover = traded / mean_equity / years if years > 0 and mean_equity > 0 else math.nan

    bench_total: float | None = None
    bench_cagr: float | None = None
    if benchmark_closes is not None:
        benchmark = benchmark or "benchmark"
        bench_returns = _benchmark_returns(ordered, benchmark_closes)
        if bench_returns is not None:
            bench_total = _total_return(bench_returns)
            bench_cagr = float(ep.annual_return(bench_returns))

    return Statistics(
        start=ordered[0].session,
        end=ordered[-1].session,
        sessions=len(ordered),
        start_equity=ordered[0].equity,
        end_equity=ordered[-1].equity,
        total_return=_total_return(returns),
        cagr=float(ep.annual_return(returns)),
        volatility=float(ep.annual_volatility(returns)),
        sharpe=float(ep.sharpe_ratio(returns, risk_free=per_session_rf)),
        sortino=float(ep.sortino_ratio(returns, required_return=per_session_rf)),
        calmar=float(ep.calmar_ratio(returns)),
        max_drawdown=float(ep.max_drawdown(returns)),
        turnover=turnover,
        trades=len(trade_list),
        fees=sum((trade.fees for trade in trade_list), Decimal(0)),
        benchmark=benchmark,
        benchmark_total_return=bench_total,
        benchmark_cagr=bench_cagr,
    )


def _total_return(returns: pd.Series) -> float:
    # One session (no returns) has gained nothing; empyrical answers NaN for an empty series.
    return float(ep.cum_returns_final(returns)) if len(returns) else 0.0


def _ordered_days(days: Sequence[DayRecord]) -> list[DayRecord]:
    if not days:
        raise ValueError("no sessions: statistics need at least one session")
    return sorted(days, key=lambda day: day.session)


def _session_index(sessions: Iterable[date]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(session) for session in sessions], name="session")


def _equity_series(days: Sequence[DayRecord]) -> pd.Series:
    ordered = sorted(days, key=lambda day: day.session)
    return pd.Series(
        [float(day.equity) for day in ordered],
        index=_session_index(day.session for day in ordered),
        dtype="float64",
        name="equity",
    )


def _aligned_closes(days: Sequence[DayRecord], closes: Mapping[date, Decimal]) -> pd.Series | None:
    """The benchmark's closes on the sessions, forward-filled, leading gaps dropped."""
    if not closes:
        return None
    raw = pd.Series(
        [float(close) for close in closes.values()],
        index=_session_index(closes.keys()),
        dtype="float64",
    ).sort_index()
    raw = raw[~raw.index.duplicated(keep="last")]
    sessions = _session_index(day.session for day in days)
    aligned = raw.reindex(raw.index.union(sessions)).ffill().reindex(sessions).dropna()
    return aligned if len(aligned) else None


def _benchmark_returns(
    days: Sequence[DayRecord], closes: Mapping[date, Decimal]
) -> pd.Series | None:
    aligned = _aligned_closes(days, closes)
    if aligned is None:
        return None
    return aligned.pct_change(fill_method=None).iloc[1:]


# --- results files -------------------------------------------------------------------------

_Cell = date | Decimal | str


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    types: tuple[type, ...]
    rows: list[tuple[_Cell, ...]]


def _tables(sessions: Sequence[SessionRecord]) -> list[_Table]:
    days: list[DayRecord] = [record.day for record in sessions]
    positions: list[PositionRecord] = [p for record in sessions for p in record.positions]
    trades: list[TradeRecord] = [t for record in sessions for t in record.trades]
    allocations: list[AllocationRecord] = [a for record in sessions for a in record.allocations]
    return [
        _Table(
            "equity",
            ("session", "equity", "cash", "long_market_value", "outcome"),
            (date, Decimal, Decimal, Decimal, str),
            [(d.session, d.equity, d.cash, d.long_market_value, d.outcome) for d in days],
        ),
        _Table(
            "positions",
            ("session", "symbol", "qty", "price", "market_value"),
            (date, str, Decimal, Decimal, Decimal),
            [(p.session, p.symbol, p.qty, p.price, p.market_value) for p in positions],
        ),
        _Table(
            "trades",
            (
                "session",
                "client_order_id",
                "broker_order_id",
                "symbol",
                "side",
                "qty",
                "price",
                "notional",
                "fees",
            ),
            (date, str, str, str, str, Decimal, Decimal, Decimal, Decimal),
            [
                (
                    t.session,
                    t.client_order_id,
                    t.broker_order_id,
                    t.symbol,
                    t.side,
                    t.qty,
                    t.price,
                    t.notional,
                    t.fees,
                )
                for t in trades
            ],
        ),
        _Table(
            "allocations",
            ("session", "strategy", "symbol", "weight"),
            (date, str, str, Decimal),
            [(a.session, a.strategy, a.symbol, a.weight) for a in allocations],
        ),
    ]


def _text(cell: _Cell) -> str:
    if isinstance(cell, Decimal):
        # Fixed-point notation keeps the exact value (and its scale) without an exponent.
        return format(cell, "f")
    if isinstance(cell, date):
        return cell.isoformat()
    return cell


def _write_csv(path: Path, table: _Table) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows([_text(cell) for cell in row] for row in table.rows)


def _write_parquet(path: Path, table: _Table) -> None:
    arrays: list[Any] = []
    schema_fields: list[Any] = []
    for index, (column, kind) in enumerate(zip(table.columns, table.types, strict=True)):
        values = [row[index] for row in table.rows]
        if kind is date:
            arrays.append(pa.array(values, type=pa.date32()))
            schema_fields.append(pa.field(column, pa.date32(), nullable=False))
        else:
            # Decimals as their exact strings: a column may mix scales, decimal128 may not.
            arrays.append(pa.array([_text(value) for value in values], type=pa.string()))
            schema_fields.append(pa.field(column, pa.string(), nullable=False))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(schema_fields)), path)


def write_results(out_dir: Path, sessions: Sequence[SessionRecord]) -> list[Path]:
    """Write the recorded sessions as tables, each as CSV and as Parquet, in ``out_dir``.

    ``equity`` (session, equity, cash, long_market_value, outcome), ``positions``,
    ``trades`` and ``allocations`` (one column per record field). Amounts are the exact
    ``Decimal`` values in fixed-point notation, as text in both formats (Parquet: ``string``
    columns; sessions are ``date32``). An empty table still gets its header (its schema).
    The directory is created if needed. Returns the paths written, CSV before Parquet per
    table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table in _tables(sessions):
        csv_path = out_dir / f"{table.name}.csv"
        parquet_path = out_dir / f"{table.name}.parquet"
        _write_csv(csv_path, table)
        _write_parquet(parquet_path, table)
        written.extend((csv_path, parquet_path))
    return written


# --- charts --------------------------------------------------------------------------------


def _new_figure(width: float = 10.0, height: float = 4.0) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=100)


def _placeholder(path: Path, title: str, message: str) -> None:
    figure, axes = _new_figure()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    _save(figure, path)


def _plot_line(axes: Axes, series: pd.Series, **style: Any) -> None:
    marker = "o" if len(series) == 1 else None
    axes.plot(series.index.to_pydatetime(), series.to_numpy(), marker=marker, **style)


def _equity_chart(
    path: Path,
    days: Sequence[DayRecord],
    benchmark: str | None,
    closes: Mapping[date, Decimal] | None,
) -> None:
    equity = _equity_series(days)
    figure, axes = _new_figure()
    _plot_line(axes, equity, label="Strategy", color="tab:blue")
    aligned = _aligned_closes(days, closes) if closes is not None else None
    if aligned is not None:
        # Rebased to the strategy's equity on the benchmark's first aligned session.
        rebased = aligned / aligned.iloc[0] * equity.loc[aligned.index[0]]
        _plot_line(axes, rebased, label=benchmark or "Benchmark", color="tab:gray")
    axes.set_title("Equity")
    axes.set_ylabel("Equity")
    axes.grid(visible=True, alpha=0.3)
    axes.legend(loc="best")
    _save(figure, path)


def _drawdown_chart(path: Path, days: Sequence[DayRecord]) -> None:
    equity = _equity_series(days)
    drawdown = equity / equity.cummax() - 1.0
    figure, axes = _new_figure()
    x = drawdown.index.to_pydatetime()
    axes.fill_between(x, drawdown.to_numpy() * 100.0, 0.0, color="tab:red", alpha=0.4)
    _plot_line(axes, drawdown * 100.0, color="tab:red")
    axes.set_title("Drawdown")
    axes.set_ylabel("Drawdown (%)")
    axes.grid(visible=True, alpha=0.3)
    _save(figure, path)


def _rolling_volatility_chart(path: Path, returns: pd.Series) -> None:
    title = f"Rolling volatility ({ROLLING_VOLATILITY_WINDOW} sessions, annualised)"
    if len(returns) < ROLLING_VOLATILITY_WINDOW:
        _placeholder(
            path,
            title,
            f"Needs at least {ROLLING_VOLATILITY_WINDOW} daily returns; "
            f"the backtest has {len(returns)}.",
        )
        return
    rolling = ep.roll_annual_volatility(returns, ROLLING_VOLATILITY_WINDOW)
    figure, axes = _new_figure()
    _plot_line(axes, pd.Series(rolling) * 100.0, color="tab:purple")
    axes.set_title(title)
    axes.set_ylabel("Volatility (%)")
    axes.grid(visible=True, alpha=0.3)
    _save(figure, path)


def _monthly_returns_chart(path: Path, returns: pd.Series) -> None:
    title = "Monthly returns (%)"
    if len(returns) == 0:
        _placeholder(path, title, "No returns: the backtest has a single session.")
        return
    monthly = ep.aggregate_returns(returns, "monthly")
    grid = monthly.unstack().reindex(columns=range(1, 13)) * 100.0
    values = grid.to_numpy(dtype="float64")
    figure, axes = _new_figure(10.0, 1.2 + 0.5 * len(grid.index))
    finite = values[np.isfinite(values)]
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    limit = limit or 1.0
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto"
    )
    for (row, column), value in np.ndenumerate(values):
        if math.isfinite(value):
            axes.text(column, row, f"{value:.1f}%", ha="center", va="center", fontsize=8)
    axes.set_xticks(range(12), _MONTHS)
    axes.set_yticks(range(len(grid.index)), [str(year) for year in grid.index])
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="%")
    _save(figure, path)


def allocation_by_file(allocations: Sequence[AllocationRecord]) -> dict[str, pd.DataFrame]:
    """Each strategy file's holdings over time: per file (sorted by name), a frame of sessions
    (every session with any allocation, ascending) by symbol (sorted) holding each symbol's
    share of that file's target on that session, from 0 to 1. A session on which the file
    allocated nothing (it failed that day) is all zeros."""
    if not allocations:
        return {}
    frame = pd.DataFrame(
        {
            "session": [pd.Timestamp(a.session) for a in allocations],
            "strategy": [a.strategy for a in allocations],
            "symbol": [a.symbol for a in allocations],
            "weight": [float(a.weight) for a in allocations],
        }
    )
    sessions = pd.DatetimeIndex(sorted(frame["session"].unique()))
    shares: dict[str, pd.DataFrame] = {}
    for strategy, rows in sorted(frame.groupby("strategy"), key=lambda item: str(item[0])):
        weights = (
            rows.groupby(["session", "symbol"])["weight"]
            .sum()
            .unstack("symbol", fill_value=0.0)
            .reindex(index=sessions, fill_value=0.0)
            .sort_index(axis="columns")
        )
        totals = weights.sum(axis="columns")
        shares[str(strategy)] = weights.div(totals.where(totals > 0.0), axis="index").fillna(0.0)
    return shares


def allocation_figure(allocations: Sequence[AllocationRecord]) -> Figure:
    """One panel per strategy file: its symbols' shares of the file's target, stacked, over
    the sessions (a symbol keeps its colour in every panel)."""
    shares = allocation_by_file(allocations)
    figure = Figure(figsize=(10.0, 1.0 + 2.0 * len(shares)), layout="constrained")
    symbols = sorted({symbol for frame in shares.values() for symbol in frame.columns})
    palette = [colormaps[name](n) for name in ("tab20", "tab20b") for n in range(20)]
    colours = {symbol: palette[n % len(palette)] for n, symbol in enumerate(symbols)}
    panels = figure.subplots(len(shares), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (strategy, frame) in zip(panels, shares.items(), strict=True):
        x = frame.index.to_pydatetime()
        values = [frame[symbol].to_numpy() * 100.0 for symbol in frame.columns]
        names = [str(symbol) for symbol in frame.columns]
        if len(frame.index) == 1:
            bottom = 0.0
            for name, column in zip(names, values, strict=True):
                axes.bar(x, column, bottom=bottom, label=name, color=colours[name])
                bottom += float(column[0])
        else:
            axes.stackplot(
                x, *values, labels=names, colors=[colours[n] for n in names], step="post"
            )
        axes.set_title(strategy, loc="left", fontsize=10)
        axes.set_ylabel("% of file")
        axes.set_ylim(0.0, 100.0)
        axes.grid(visible=True, alpha=0.3)
        axes.legend(
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=7,
            ncol=1 if len(names) <= 7 else 2,
            frameon=False,
        )
    figure.suptitle("Allocation by strategy file (each file's holdings, as a share of its target)")
    return figure


def _allocation_chart(path: Path, allocations: Sequence[AllocationRecord]) -> None:
    if not allocations:
        _placeholder(path, "Allocation by strategy file", "No allocations were recorded.")
        return
    _save(allocation_figure(allocations), path)


# --- tearsheet -----------------------------------------------------------------------------

_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1040px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.9em; }
th { text-align: left; background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 1em 0; }
.costs { color: #555; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="period">{{ start }} to {{ end }} ({{ sessions }} sessions)</p>
{% if costs %}<p class="costs">Costs: {{ costs }}</p>{% endif %}
<h2>Statistics</h2>
<table class="statistics">
<thead><tr><th>Statistic</th><th>Strategy</th>
{%- if benchmark %}<th>{{ benchmark }}</th>{% endif %}</tr></thead>
<tbody>
{%- for label, strategy, bench in rows %}
<tr><td>{{ label }}</td><td class="num">{{ strategy }}</td>
{%- if benchmark %}<td class="num">{{ bench }}</td>{% endif %}</tr>
{%- endfor %}
</tbody>
</table>
<h2>Charts</h2>
{%- for chart, alt in charts %}
<img src="{{ chart }}" alt="{{ alt }}">
{%- endfor %}
<h2>Positions at the close of {{ end }}</h2>
{% if positions %}
<table class="positions">
<thead><tr><th>Symbol</th><th>Quantity</th><th>Price</th><th>Market value</th></tr></thead>
<tbody>
{%- for p in positions %}
<tr><td>{{ p.symbol }}</td><td class="num">{{ p.qty }}</td><td class="num">{{ p.price }}</td>
<td class="num">{{ p.market_value }}</td></tr>
{%- endfor %}
</tbody>
</table>
{% else %}
<p>No positions.</p>
{% endif %}
</body>
</html>
"""

_NOT_AVAILABLE: Final = "n/a"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _percent(value: float | None) -> str:
    finite = _finite(value)
    return _NOT_AVAILABLE if finite is None else f"{finite * 100:.2f}%"


def _ratio(value: float | None) -> str:
    finite = _finite(value)
    return _NOT_AVAILABLE if finite is None else f"{finite:.2f}"


def _statistics_rows(stats: Statistics) -> list[tuple[str, str, str]]:
    blank = "—"
    measures: list[tuple[str, Callable[[float | None], str], float, float | str | None]] = [
        ("Total return", _percent, stats.total_return, stats.benchmark_total_return),
        ("CAGR", _percent, stats.cagr, stats.benchmark_cagr),
        ("Volatility (annualised)", _percent, stats.volatility, blank),
        ("Sharpe ratio", _ratio, stats.sharpe, blank),
        ("Sortino ratio", _ratio, stats.sortino, blank),
        ("Calmar ratio", _ratio, stats.calmar, blank),
        ("Max drawdown", _percent, stats.max_drawdown, blank),
        ("Turnover (annualised)", _percent, stats.turnover, blank),
    ]
    rows = [
        (label, fmt(value), bench if isinstance(bench, str) else fmt(bench))
        for label, fmt, value, bench in measures
    ]
    rows += [
        ("Start equity", str(stats.start_equity), blank),
        ("End equity", str(stats.end_equity), blank),
        ("Trades", str(stats.trades), blank),
        ("Fees", str(stats.fees), blank),
    ]
    return rows


def write_tearsheet(
    out_dir: Path,
    sessions: Sequence[SessionRecord],
    *,
    title: str,
    benchmark: str | None = None,
    benchmark_closes: Mapping[date, Decimal] | None = None,
    costs: str = "",
) -> Path:
    """Write the tearsheet of a backtest in ``out_dir`` and return the HTML page's path.

    Writes ``stats.json`` (:meth:`Statistics.to_json` of :func:`compute_statistics`),
    ``equity.png``, ``drawdown.png``, ``rolling_volatility.png``, ``monthly_returns.png``,
    ``allocation.png`` (a chart without enough data shows a note instead) and
    ``tearsheet.html``: the title, the period, the ``costs`` text, the statistics (with the
    benchmark's where available), the charts by relative path and the last session's
    positions. The directory is created if needed.

    Raises:
        ValueError: without any session.
    """
    if not sessions:
        raise ValueError("no sessions: a tearsheet needs at least one session")
    ordered = sorted(sessions, key=lambda record: record.day.session)
    days = [record.day for record in ordered]
    trades = [trade for record in ordered for trade in record.trades]
    allocations = [allocation for record in ordered for allocation in record.allocations]
    stats = compute_statistics(days, trades, benchmark=benchmark, benchmark_closes=benchmark_closes)
    returns = daily_returns(days)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STATS_FILE).write_text(
        json.dumps(stats.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    _equity_chart(out_dir / EQUITY_CHART, days, stats.benchmark, benchmark_closes)
    _drawdown_chart(out_dir / DRAWDOWN_CHART, days)
    _rolling_volatility_chart(out_dir / ROLLING_VOLATILITY_CHART, returns)
    _monthly_returns_chart(out_dir / MONTHLY_RETURNS_CHART, returns)
    _allocation_chart(out_dir / ALLOCATION_CHART, allocations)

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = environment.from_string(_TEMPLATE).render(
        title=title,
        start=stats.start.isoformat(),
        end=stats.end.isoformat(),
        sessions=stats.sessions,
        costs=costs,
        benchmark=stats.benchmark if stats.benchmark_total_return is not None else None,
        rows=_statistics_rows(stats),
        charts=[(chart, chart.removesuffix(".png").replace("_", " ")) for chart in _CHARTS],
        positions=sorted(ordered[-1].positions, key=lambda position: position.symbol),
    )
    html_path = out_dir / TEARSHEET_FILE
    html_path.write_text(page, encoding="utf-8")
    return html_path
