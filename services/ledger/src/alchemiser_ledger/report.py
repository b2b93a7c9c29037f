"""The monthly report: a month's summary of a P&L statement, its HTML page and equity chart.

Rules (all figures exact ``Decimal``, taken from the statement, never recomputed in floats):

* A month's sessions are the statement's sessions in that calendar month.
* **Start equity** is the account's equity before the month's first session (the previous
  session's close, or the ledger's inception for the account's first session); **end
  equity** the close of its last session; the month's **P&L** is their difference, which is
  the last session's month-to-date figure.
* Per strategy file, the month's P&L is its month-to-date figure at the month's last session;
  **realised** is the realised P&L it booked in the month (sells and fees) and **unrealised**
  the rest, the change of its open positions' value over the month, so the two add up to the
  month's P&L.
* The chart is drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (never
  through pyplot's global state); amounts become floats only there. The HTML page is rendered
  by Jinja2 with autoescaping, the chart embedded as a ``data:image/png;base64`` URI, so the
  page is one self-contained file.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import jinja2

from alchemiser_ledger.domain import DayPnl
from alchemiser_ledger.domain.decimals import ZERO
from alchemiser_ledger.statements import PnlStatement

__all__ = [
    "Month",
    "MonthSummary",
    "SessionLine",
    "StrategyLine",
    "equity_chart",
    "money",
    "month_summary",
    "render_html",
]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month; ``str()`` is ``YYYY-MM``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        """Refuse a month outside 1..12 or a year ``date`` cannot hold."""
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` as a month; :class:`ValueError` otherwise."""
        match = _MONTH.match(text)
        if match is None:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        """The month ``day`` falls in."""
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        """The month's first calendar day."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The month's last calendar day."""
        following = date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return following - timedelta(days=1)

    def previous(self) -> Month:
        """The calendar month before this one."""
        return Month.of(self.first_day - timedelta(days=1))

    def __contains__(self, day: object) -> bool:
        """Whether ``day`` (a date) falls in this month."""
        return isinstance(day, date) and (day.year, day.month) == (self.year, self.month)

    def __str__(self) -> str:
        """``YYYY-MM``."""
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class SessionLine:
    """One session of the month: the close's equity and the account's P&L."""

    session: date
    equity: Decimal
    day_pnl: Decimal
    month_to_date: Decimal


@dataclass(frozen=True, slots=True)
class StrategyLine:
    """One strategy file's month: P&L, split into realised and unrealised (they add up)."""

    name: str
    month_pnl: Decimal
    realised: Decimal
    unrealised: Decimal


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """One account's month (see the module docstring for the rules)."""

    account_id: str
    month: Month
    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal
    since_inception: Decimal
    sessions: tuple[SessionLine, ...]
    strategies: tuple[StrategyLine, ...]
    fills: int


def month_summary(statement: PnlStatement, month: Month, *, fills: int) -> MonthSummary | None:
    """The statement's ``month`` (``fills``: the number of fills booked in it).

    ``None`` when the statement has no session in the month. The statement must run from the
    account's inception up to at least the month (:func:`~alchemiser_ledger.statements.
    account_pnl` without ``start``), so month-to-date figures start with the month.
    """
    days = [day for day in statement.days if day.session in month]
    if not days:
        return None
    first, last = days[0], days[-1]
    return MonthSummary(
        account_id=statement.account_id,
        month=month,
        start_equity=first.equity - first.account.day,
        end_equity=last.equity,
        pnl=last.account.month_to_date,
        since_inception=last.account.since_inception,
        sessions=tuple(
            SessionLine(day.session, day.equity, day.account.day, day.account.month_to_date)
            for day in days
        ),
        strategies=_strategy_lines(days),
        fills=fills,
    )


def _strategy_lines(days: list[DayPnl]) -> tuple[StrategyLine, ...]:
    """Each strategy's month P&L (its MTD at the last session), realised and the rest."""
    last = days[-1]
    lines: list[StrategyLine] = []
    for name, figures in sorted(last.strategies.items()):
        realised = sum((day.realised.get(name, ZERO) for day in days), ZERO)
        lines.append(
            StrategyLine(name, figures.month_to_date, realised, figures.month_to_date - realised)
        )
    return tuple(lines)


def equity_chart(summary: MonthSummary) -> bytes:
    """The month's closing equity per session as a PNG (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    figure = Figure(figsize=(8.0, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # one tick per session (a month has at most ~23), placed by calendar day
    days = [float(line.session.toordinal()) for line in summary.sessions]
    equity = [float(line.equity) for line in summary.sessions]
    axes.plot(days, equity, marker="o", linewidth=1.5, color="#1f5f99", label="equity")
    axes.axhline(
        float(summary.start_equity),
        color="#999999",
        linewidth=0.8,
        linestyle="--",
        label="start of the month",
    )
    axes.set_xticks(days, labels=[line.session.strftime("%m-%d") for line in summary.sessions])
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.set_title(f"{summary.account_id}: equity at each close, {summary.month}")
    axes.grid(visible=True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<table>
<tr><th>Start equity</th><td class="num">{{ start_equity }}</td></tr>
<tr><th>End equity</th><td class="num">{{ end_equity }}</td></tr>
<tr><th>Month P&amp;L</th><td class="num">{{ pnl }}</td></tr>
<tr><th>Since inception</th><td class="num">{{ since_inception }}</td></tr>
<tr><th>Sessions</th><td class="num">{{ session_count }}</td></tr>
<tr><th>Fills</th><td class="num">{{ fills }}</td></tr>
</table>
<img src="data:image/png;base64,{{ chart }}" alt="equity at each close">
<h2>Sessions</h2>
<table>
<tr><th>Session</th><th>Equity</th><th>Day P&amp;L</th><th>Month to date</th></tr>
{% for row in sessions -%}
<tr><td>{{ row.session }}</td><td class="num">{{ row.equity }}</td>
<td class="num">{{ row.day }}</td><td class="num">{{ row.mtd }}</td></tr>
{% endfor -%}
</table>
<h2>Strategy files</h2>
<table>
<tr><th>Strategy</th><th>Month P&amp;L</th><th>Realised</th><th>Unrealised</th></tr>
{% for row in strategies -%}
<tr><td>{{ row.name }}</td><td class="num">{{ row.pnl }}</td>
<td class="num">{{ row.realised }}</td><td class="num">{{ row.unrealised }}</td></tr>
{% endfor -%}
</table>
</body>
</html>
"""


def money(value: Decimal) -> str:
    """An amount for display: thousands separators, cents (the exact figure is in JSON)."""
    return f"{value:,.2f}"


def render_html(summary: MonthSummary, chart_png: bytes) -> str:
    """The month's report as one self-contained HTML page (the chart embedded)."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(_TEMPLATE).render(
        title=f"{summary.account_id}: {summary.month}",
        start_equity=money(summary.start_equity),
        end_equity=money(summary.end_equity),
        pnl=money(summary.pnl),
        since_inception=money(summary.since_inception),
        session_count=len(summary.sessions),
        fills=summary.fills,
        chart=base64.b64encode(chart_png).decode("ascii"),
        sessions=[
            {
                "session": line.session.isoformat(),
                "equity": money(line.equity),
                "day": money(line.day_pnl),
                "mtd": money(line.month_to_date),
            }
            for line in summary.sessions
        ],
        strategies=[
            {
                "name": line.name,
                "pnl": money(line.month_pnl),
                "realised": money(line.realised),
                "unrealised": money(line.unrealised),
            }
            for line in summary.strategies
        ],
    )
