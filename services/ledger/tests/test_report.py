"""The monthly report's pure part: months, the month's summary, the HTML page and the chart."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from alchemiser_ledger.domain import DayPnl, PnlFigures
from alchemiser_ledger.report import Month, MonthSummary, equity_chart, month_summary, render_html
from alchemiser_ledger.statements import PnlStatement


def D(text: str) -> Decimal:
    return Decimal(text)


def _day(
    session: date,
    equity: str,
    account: tuple[str, str, str],
    strategies: dict[str, tuple[str, str, str, str, str]],
) -> DayPnl:
    """``strategies``: name -> (day, mtd, inception, realised that day, unrealised)."""
    return DayPnl(
        session=session,
        equity=D(equity),
        account=PnlFigures(*map(D, account)),
        strategies={name: PnlFigures(*map(D, v[:3])) for name, v in strategies.items()},
        realised={name: D(v[3]) for name, v in strategies.items() if D(v[3])},
        unrealised={name: D(v[4]) for name, v in strategies.items()},
    )


# Feb 29 closes at 10010 (from 10000); March: +20 then +14.50. "b<script>" holds a position
# bought in February; "a" realises 5 on March 4 and keeps 3 unrealised.
STATEMENT = PnlStatement(
    account_id="PA1",
    inception_equity=D("10000"),
    days=(
        _day(
            date(2024, 2, 29),
            "10010",
            ("10", "10", "10"),
            {"b<script>": ("10", "10", "10", "0", "10")},
        ),
        _day(
            date(2024, 3, 1),
            "10030",
            ("20", "20", "30"),
            {"b<script>": ("20", "20", "30", "0", "30")},
        ),
        _day(
            date(2024, 3, 4),
            "10044.50",
            ("14.50", "34.50", "44.50"),
            {"a": ("8", "8", "8", "5", "3"), "b<script>": ("6.50", "26.50", "36.50", "0", "36.50")},
        ),
    ),
)


def test_month_parse_when_valid_then_bounds_and_previous_are_calendar_ones() -> None:
    march = Month.parse("2024-03")
    assert (march.first_day, march.last_day) == (date(2024, 3, 1), date(2024, 3, 31))
    assert Month.parse("2024-02").last_day == date(2024, 2, 29)
    assert str(Month.parse("2024-01").previous()) == "2023-12"
    assert Month.parse("2024-12").last_day == date(2024, 12, 31)
    assert date(2024, 3, 31) in march
    assert date(2024, 4, 1) not in march


@pytest.mark.parametrize("text", ["2024-13", "2024-00", "2024-3", "24-03", "previous", ""])
def test_month_parse_when_malformed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="month"):
        Month.parse(text)


def test_month_summary_when_month_has_sessions_then_ends_pnl_and_split() -> None:
    summary = month_summary(STATEMENT, Month(2024, 3), fills=2)
    assert summary is not None
    assert (summary.start_equity, summary.end_equity, summary.pnl) == (
        D("10010"),
        D("10044.50"),
        D("34.50"),
    )
    assert summary.since_inception == D("44.50")
    assert [line.session for line in summary.sessions] == [date(2024, 3, 1), date(2024, 3, 4)]
    assert [line.day_pnl for line in summary.sessions] == [D("20"), D("14.50")]
    lines = {line.name: line for line in summary.strategies}
    assert (lines["a"].month_pnl, lines["a"].realised, lines["a"].unrealised) == (
        D("8"),
        D("5"),
        D("3"),
    )
    # b: no realised P&L in March, its month is the change of its open position: 10 -> 36.50
    assert (lines["b<script>"].month_pnl, lines["b<script>"].realised) == (D("26.50"), D("0"))
    assert lines["b<script>"].unrealised == D("26.50")
    assert summary.fills == 2


def test_month_summary_when_first_month_then_start_is_the_inception() -> None:
    summary = month_summary(STATEMENT, Month(2024, 2), fills=1)
    assert summary is not None
    assert (summary.start_equity, summary.pnl) == (D("10000"), D("10"))


def test_month_summary_when_no_session_in_month_then_none() -> None:
    assert month_summary(STATEMENT, Month(2024, 4), fills=0) is None


def _march() -> MonthSummary:
    summary = month_summary(STATEMENT, Month(2024, 3), fills=2)
    assert summary is not None
    return summary


def test_equity_chart_when_drawn_then_png_bytes() -> None:
    assert equity_chart(_march()).startswith(b"\x89PNG\r\n\x1a\n")


def test_render_html_when_rendered_then_chart_embedded_and_names_escaped() -> None:
    page = render_html(_march(), b"\x89PNG-bytes")
    assert '<img src="data:image/png;base64,iVBORy1ieXRlcw==' in page
    assert "b&lt;script&gt;" in page
    assert "<script>" not in page
    for text in ("10,010.00", "10,044.50", "34.50", "26.50", "2024-03-04"):
        assert text in page
