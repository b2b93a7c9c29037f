"""Bar and PriceHistory values, snapshot ids, alignment and lookback arithmetic."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from alchemiser_marketdata import (
    Bar,
    PriceHistory,
    align_closes,
    lookback_bars,
    lookback_start,
    market_snapshot_id,
    start_for_bars,
)


def bar(day: date, close: str, symbol: str = "SPY") -> Bar:
    price = Decimal(close)
    return Bar(date=day, symbol=symbol, open=price, high=price, low=price, close=price, volume=1)


def history(symbol: str, start: date, closes: list[str], step: int = 1) -> PriceHistory:
    days = [start + timedelta(days=step * i) for i in range(len(closes))]
    return PriceHistory(symbol, [bar(d, c, symbol) for d, c in zip(days, closes, strict=True)])


D0 = date(2024, 1, 1)


def test_bar_when_price_not_positive_then_value_error() -> None:
    one = Decimal("1")
    with pytest.raises(ValueError, match="close must be a positive finite Decimal"):
        Bar(date=D0, symbol="SPY", open=one, high=one, low=one, close=Decimal("0"), volume=1)


def test_history_when_dates_not_increasing_then_value_error() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        PriceHistory("SPY", [bar(D0, "1"), bar(D0, "2")])


def test_history_when_bar_of_other_symbol_then_value_error() -> None:
    with pytest.raises(ValueError, match="got a bar of QQQ"):
        PriceHistory("SPY", [bar(D0, "1", "QQQ")])


def test_history_arrays_when_read_then_match_bars_and_are_read_only() -> None:
    h = history("SPY", D0, ["1.5", "2.25", "3"])

    assert h.closes.tolist() == [1.5, 2.25, 3.0]
    assert h.dates.tolist() == [D0, D0 + timedelta(days=1), D0 + timedelta(days=2)]
    assert h.dates.dtype == np.dtype("datetime64[D]")
    with pytest.raises(ValueError, match="read-only"):
        h.closes[0] = 9.0
    with pytest.raises(ValueError, match="read-only"):
        h.dates[0] = h.dates[1]
    around_1970 = history("OLD", date(1969, 12, 31), ["1", "2"])  # day numbers go negative
    assert around_1970.dates.tolist() == [date(1969, 12, 31), date(1970, 1, 1)]


def test_between_when_range_inside_then_sub_history_and_none_when_empty() -> None:
    h = history("SPY", D0, ["1", "2", "3", "4"])

    part = h.between(D0 + timedelta(days=1), D0 + timedelta(days=2))

    assert part is not None
    assert part.close_values == (Decimal("2"), Decimal("3"))
    assert h.between(D0 - timedelta(days=5), D0 - timedelta(days=1)) is None


def test_snapshot_id_when_same_inputs_in_other_order_then_same_id() -> None:
    spy = history("SPY", D0, ["100.50", "101"])
    qqq = history("QQQ", D0, ["200", "201.10"])

    first = market_snapshot_id({"SPY": spy, "QQQ": qqq}, D0 + timedelta(days=1))
    second = market_snapshot_id([qqq, spy], D0 + timedelta(days=1))

    assert first == second
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_snapshot_id_when_close_scale_differs_then_same_id() -> None:
    assert market_snapshot_id([history("SPY", D0, ["100.50"])], D0) == market_snapshot_id(
        [history("SPY", D0, ["100.5000"])], D0
    )


def test_snapshot_id_when_last_close_changes_then_id_changes() -> None:
    base = market_snapshot_id([history("SPY", D0, ["100", "101"])], D0 + timedelta(days=1))
    changed = market_snapshot_id([history("SPY", D0, ["100", "101.01"])], D0 + timedelta(days=1))

    assert base != changed


def test_snapshot_id_when_only_earlier_bars_change_then_same_id() -> None:
    day = D0 + timedelta(days=1)

    assert market_snapshot_id([history("SPY", D0, ["100", "101"])], day) == market_snapshot_id(
        [history("SPY", D0, ["99", "101"])], day
    )


def test_snapshot_id_when_later_bars_exist_then_ignored_but_as_of_counts() -> None:
    short = history("SPY", D0, ["100", "101"])
    longer = history("SPY", D0, ["100", "101", "150"])
    day = D0 + timedelta(days=1)

    assert market_snapshot_id([short], day) == market_snapshot_id([longer], day)
    assert market_snapshot_id([short], day) != market_snapshot_id([short], day + timedelta(days=1))


def test_snapshot_id_when_symbol_added_then_id_changes() -> None:
    spy = history("SPY", D0, ["100"])

    assert market_snapshot_id([spy], D0) != market_snapshot_id([spy, history("QQQ", D0, ["1"])], D0)


def test_align_when_symbols_start_late_or_miss_days_then_nan_then_carried() -> None:
    early = history("A", D0, ["1", "2", "3", "4"])
    late = PriceHistory(
        "B", [bar(D0 + timedelta(days=1), "10", "B"), bar(D0 + timedelta(days=3), "12", "B")]
    )

    aligned = align_closes({"A": early, "B": late})

    assert aligned.dates == tuple(D0 + timedelta(days=i) for i in range(4))
    b = aligned.closes["B"]
    assert math.isnan(b[0])
    assert b[1:].tolist() == [10.0, 10.0, 12.0]
    assert aligned.filled == {"A": 0, "B": 1}
    assert aligned.closes["A"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_align_when_aligned_then_every_array_read_only_and_empty_input_gives_empty_axis() -> None:
    full = history("A", D0, ["1", "2", "3"])
    gappy = PriceHistory("B", [bar(D0, "5", "B"), bar(D0 + timedelta(days=2), "6", "B")])

    aligned = align_closes([full, gappy])

    for closes in aligned.closes.values():
        with pytest.raises(ValueError, match="read-only"):
            closes[0] = 0.0
    assert aligned.closes["B"].tolist() == [5.0, 5.0, 6.0]
    empty = align_closes([])
    assert (empty.dates, dict(empty.closes), dict(empty.filled)) == ((), {}, {})


def test_align_when_until_given_then_later_bars_dropped() -> None:
    aligned = align_closes([history("A", D0, ["1", "2", "3"])], until=D0 + timedelta(days=1))

    assert aligned.dates[-1] == D0 + timedelta(days=1)
    assert aligned.closes["A"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(("window", "bars"), [(10, 201), (60, 201), (90, 271), (200, 601)])
def test_lookback_bars_when_window_given_then_max_of_rsi_warmup_and_sma200(
    window: int, bars: int
) -> None:
    assert lookback_bars(window) == bars


def test_lookback_start_when_weekday_calendar_then_enough_sessions() -> None:
    for as_of in (date(2024, 1, 2), date(2024, 7, 5), date(2024, 12, 31)):
        for window in (10, 90, 200):
            start = lookback_start(as_of, window)
            weekdays = sum(
                1
                for offset in range((as_of - start).days + 1)
                if (start + timedelta(days=offset)).weekday() < 5
            )
            holidays = 10 * math.ceil((as_of - start).days / 365)
            assert weekdays - holidays >= lookback_bars(window)


def test_start_for_bars_when_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        start_for_bars(D0, 0)
    with pytest.raises(ValueError, match="at least 1"):
        lookback_bars(0)
