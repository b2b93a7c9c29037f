"""MarketData validation and the IndicatorCache."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from alchemiser_strategy.domain.errors import InvalidMarketDataError, SourcePosition
from alchemiser_strategy.domain.indicators import rsi
from alchemiser_strategy.domain.market import IndicatorCache, MarketData
from alchemiser_strategy.domain.model import IndicatorRef
from alchemiser_strategy.domain.sample_prices import business_days, random_walk

DAYS = business_days(5, end=date(2024, 3, 8))


def test_market_data_when_valid_then_as_of_is_last_date_and_arrays_are_read_only() -> None:
    market = MarketData(DAYS, {"SPY": [1.0, 2.0, 3.0, 4.0, 5.0]})

    assert market.as_of == date(2024, 3, 8)
    assert len(market) == 5
    assert "SPY" in market
    assert market.symbols == frozenset({"SPY"})
    assert market.index_of(date(2024, 3, 6)) == 2
    with pytest.raises(ValueError, match="read-only"):
        market.closes["SPY"][0] = 9.0


def test_market_data_when_symbol_starts_late_then_first_valid_index_is_its_first_price() -> None:
    market = MarketData(DAYS, {"NEW": [math.nan, math.nan, 3.0, 4.0, 5.0]})

    assert market.first_valid_index("NEW") == 2


@pytest.mark.parametrize(
    ("dates", "closes", "message"),
    [
        ((), {}, "at least one date"),
        ((DAYS[1], DAYS[0]), {}, "strictly increasing"),
        (DAYS, {"A": [1.0, 2.0]}, "A: expected 5 closes"),
        (DAYS, {"A": [1.0, math.nan, 3.0, 4.0, 5.0]}, "A: gap in closes"),
        (DAYS, {"A": [1.0, 0.0, 3.0, 4.0, 5.0]}, "A: closes must be positive"),
    ],
)
def test_market_data_when_malformed_then_invalid_market_data_error(
    dates: tuple[date, ...], closes: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(InvalidMarketDataError, match=message):
        MarketData(dates, closes)


def test_market_data_when_date_not_on_axis_then_index_of_raises_key_error() -> None:
    market = MarketData(DAYS, {"A": [1.0] * 5})

    with pytest.raises(KeyError):
        market.index_of(date(2024, 3, 9))


def test_restricted_to_when_symbols_given_then_only_those_kept() -> None:
    market = MarketData(DAYS, {"A": [1.0] * 5, "B": [2.0] * 5})

    assert market.restricted_to({"B", "Z"}).symbols == frozenset({"B"})


def test_indicator_cache_when_same_key_requested_twice_then_computed_once() -> None:
    closes = random_walk(300, seed=1)
    market = MarketData(business_days(300), {"SPY": closes})
    cache = IndicatorCache(market)

    first = cache.series("SPY", "rsi", 10)
    second = cache.series("SPY", "rsi", 10)
    cache.series("SPY", "rsi", 14)

    assert first is second
    assert cache.computations == 2
    np.testing.assert_array_equal(first, rsi(closes, 10))


def test_values_of_when_reference_read_again_then_same_floats_as_the_series_computed_once() -> None:
    closes = random_walk(300, seed=1)
    market = MarketData(business_days(300), {"SPY": closes})
    cache = IndicatorCache(market)
    ref = IndicatorRef("rsi", "SPY", (10,), SourcePosition("test.clj", 1, 1))
    twin = IndicatorRef("rsi", "SPY", (10,), SourcePosition("test.clj", 2, 1))

    values = cache.values_of(ref)

    assert values is not None
    assert cache.values_of(ref) is values
    np.testing.assert_array_equal(np.array(cache.values_of(twin)), np.array(values))
    assert cache.computations == 1
    assert [type(value) for value in values] == [float] * 300
    np.testing.assert_array_equal(np.array(values), cache.series("SPY", "rsi", 10))


def test_values_of_when_symbol_has_no_column_then_none_and_nothing_computed() -> None:
    market = MarketData(DAYS, {"SPY": [1.0, 2.0, 3.0, 4.0, 5.0]})
    cache = IndicatorCache(market)

    assert (
        cache.values_of(IndicatorRef("rsi", "QQQ", (2,), SourcePosition("test.clj", 1, 1))) is None
    )
    assert cache.computations == 0


def test_indicator_cache_when_symbol_starts_late_then_indicator_starts_at_its_first_price() -> None:
    late = random_walk(100, seed=2)
    closes = np.concatenate([np.full(50, np.nan), late])
    market = MarketData(business_days(150), {"NEW": closes})

    series = IndicatorCache(market).series("NEW", "rsi", 10)

    assert np.isnan(series[:60]).all()
    np.testing.assert_array_equal(series[50:], rsi(late, 10))


def test_indicator_cache_when_derived_source_then_price_function_runs_once() -> None:
    market = MarketData(DAYS, {"A": [1.0] * 5})
    cache = IndicatorCache(market)
    calls: list[int] = []

    def prices() -> np.ndarray:
        calls.append(1)
        return np.array([1.0, 2.0, 3.0, 4.0, 5.0])

    sma = cache.derived_series("node", "moving-average-price", 2, prices)
    cache.derived_series("node", "cumulative-return", 1, prices)

    assert len(calls) == 1
    np.testing.assert_array_equal(sma, [np.nan, 1.5, 2.5, 3.5, 4.5])
