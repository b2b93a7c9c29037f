"""Indicators on the REAL index series of the demo dataset (^GSPC, ^IXIC) agree with TA-Lib.

The series go through the same path as in the service (dataset -> PriceHistory ->
``to_market_data`` -> ``IndicatorCache``), and are compared with TA-Lib after a 250-bar
warm-up to 1e-6 relative.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import talib

from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR, to_market_data
from alchemiser_strategy.domain import IndicatorCache, MarketData
from alchemiser_strategy.domain.indicators import FloatArray

WARMUP = 250
REAL = ("^GSPC", "^IXIC")


@cache
def _market() -> MarketData:
    dataset = DatasetMarketData(DEMO_DATASET_DIR)
    assert all(not info.synthetic for info in (dataset.info(s) for s in REAL) if info)
    return to_market_data([h for s in REAL if (h := dataset.history(s)) is not None])


def _returns_pct(closes: FloatArray) -> FloatArray:
    return np.asarray(talib.ROCP(closes, timeperiod=1) * 100.0, dtype=np.float64)


TALIB: dict[str, Callable[[FloatArray, int], FloatArray]] = {
    "rsi": lambda c, n: talib.RSI(c, timeperiod=n),
    "moving-average-price": lambda c, n: talib.SMA(c, timeperiod=n),
    "exponential-moving-average-price": lambda c, n: talib.EMA(c, timeperiod=n),
    "moving-average-return": lambda c, n: talib.SMA(_returns_pct(c), timeperiod=n),
    "cumulative-return": lambda c, n: talib.ROC(c, timeperiod=n),
    "stdev-return": lambda c, n: talib.STDDEV(_returns_pct(c), timeperiod=n, nbdev=1.0),
}

CASES = [
    ("rsi", 2), ("rsi", 9), ("rsi", 10), ("rsi", 14), ("rsi", 20), ("rsi", 60),
    ("moving-average-price", 3), ("moving-average-price", 20), ("moving-average-price", 200),
    ("exponential-moving-average-price", 10), ("exponential-moving-average-price", 50),
    ("exponential-moving-average-price", 200),
    ("moving-average-return", 14), ("moving-average-return", 90),
    ("cumulative-return", 1), ("cumulative-return", 60), ("cumulative-return", 250),
    ("stdev-return", 6), ("stdev-return", 14), ("stdev-return", 60),
]  # fmt: skip


def test_real_series_when_loaded_then_long_and_complete() -> None:
    market = _market()

    assert len(market) == 3523
    for symbol in REAL:
        assert market.first_valid_index(symbol) == 0
        assert np.isfinite(market.closes[symbol]).all()


@pytest.mark.parametrize("symbol", REAL)
@pytest.mark.parametrize(("name", "window"), CASES)
def test_indicator_on_real_index_when_compared_with_talib_then_equal_after_warm_up(
    symbol: str, name: str, window: int
) -> None:
    market = _market()
    closes = np.ascontiguousarray(market.closes[symbol], dtype=np.float64)

    ours = IndicatorCache(market).series(symbol, name, window)
    theirs = TALIB[name](closes, window)

    assert np.isfinite(ours[WARMUP:]).all()
    np.testing.assert_allclose(ours[WARMUP:], theirs[WARMUP:], rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("symbol", REAL)
def test_max_drawdown_on_real_index_when_compared_with_a_plain_loop_then_equal(
    symbol: str,
) -> None:
    market = _market()
    closes = market.closes[symbol]
    window = 60
    expected = np.array(
        [
            max(
                (1.0 - closes[end] / closes[first : end + 1].max()) * 100.0
                for end in range(first, first + window)
            )
            for first in range(len(closes) - window + 1)
        ]
    )

    ours = IndicatorCache(market).series(symbol, "max-drawdown", window)

    np.testing.assert_allclose(ours[window - 1 :], expected, rtol=1e-12, atol=1e-12)
