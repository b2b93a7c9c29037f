"""Indicators on small hand-computed cases, and against TA-Lib on a long random walk."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from alchemiser_strategy.domain import indicators as ind
from alchemiser_strategy.domain.sample_prices import random_walk

NAN = math.nan


def _close(actual: ind.FloatArray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected), rtol=1e-12, atol=1e-12, equal_nan=True)


def test_rsi_when_small_series_then_wilder_smoothing_by_hand() -> None:
    # deltas 1, 1, -1, 2; seed (n=2): gain 1, loss 0 -> 100; then gain .5 / loss .5 -> 50;
    # then gain (0.5 + 2) / 2 = 1.25, loss 0.25 -> 100 * 1.25 / 1.5.
    _close(ind.rsi(np.array([10.0, 11, 12, 11, 13]), 2), [NAN, NAN, 100, 50, 100 * 1.25 / 1.5])


def test_rsi_when_no_losses_then_100_and_when_only_losses_then_0() -> None:
    assert ind.rsi(np.arange(1.0, 15.0), 10)[-1] == 100.0
    assert ind.rsi(np.arange(15.0, 1.0, -1.0), 10)[-1] == 0.0


def test_rsi_when_prices_flat_then_neutral_50() -> None:
    assert ind.rsi(np.full(12, 5.0), 10)[-1] == 50.0


def test_rsi_when_history_shorter_than_window_plus_one_then_all_nan() -> None:
    assert np.isnan(ind.rsi(np.arange(1.0, 11.0), 10)).all()


def test_current_price_when_called_then_returns_an_independent_copy() -> None:
    closes = np.array([1.0, 2.0, 3.0])
    result = ind.current_price(closes, 5)
    result[0] = 99.0

    _close(result, [99.0, 2.0, 3.0])
    assert closes[0] == 1.0


def test_moving_average_price_when_window_3_then_simple_mean() -> None:
    _close(ind.moving_average_price(np.array([1.0, 2, 3, 4, 8]), 3), [NAN, NAN, 2, 3, 5])


def test_exponential_moving_average_when_window_3_then_sma_seed_and_alpha_half() -> None:
    # seed mean(2, 4, 6) = 4; alpha = 2 / (3 + 1) = 0.5: 4 + 0.5 * (10 - 4) = 7; 7 + .5 * -7.
    _close(
        ind.exponential_moving_average_price(np.array([2.0, 4, 6, 10, 0]), 3),
        [NAN, NAN, 4, 7, 3.5],
    )


def test_moving_average_return_when_window_2_then_mean_of_daily_percent_changes() -> None:
    # returns: +10%, -10%, 0%
    _close(ind.moving_average_return(np.array([100.0, 110, 99, 99]), 2), [NAN, NAN, 0, -5])


def test_cumulative_return_when_window_2_then_percent_change_over_two_bars() -> None:
    _close(ind.cumulative_return(np.array([100.0, 110, 99, 121]), 2), [NAN, NAN, -1, 10])


def test_stdev_return_when_window_2_then_population_std_of_percent_changes() -> None:
    # returns +10, -10, 0: std(10, -10) = 10, std(-10, 0) = 5 (ddof = 0)
    _close(ind.stdev_return(np.array([100.0, 110, 99, 99]), 2), [NAN, NAN, 10, 5])


def test_max_drawdown_when_window_3_then_largest_fall_from_running_peak() -> None:
    _close(
        ind.max_drawdown(np.array([100.0, 120, 90, 110, 80, 85, 90]), 3),
        [NAN, NAN, 25, 25, 100 * 30 / 110, 100 * 30 / 110, 0],
    )


def test_max_drawdown_when_window_only_rises_then_zero() -> None:
    assert ind.max_drawdown(np.array([1.0, 2, 3, 4]), 4)[-1] == 0.0


def test_max_drawdown_when_trough_precedes_peak_then_it_is_not_a_drawdown() -> None:
    # 50 comes before the peak 100, so the only fall is 100 -> 90 (not the 50% range).
    assert ind.max_drawdown(np.array([50.0, 100, 90]), 3)[-1] == pytest.approx(10.0)


#: arguments per parameter list: windows of 7, PPO 5/9, PPO signal 5/9/4.
SAMPLE_ARGS = {("window",): (7,), ("short-window", "long-window"): (5, 9)}
SAMPLE_ARGS[("short-window", "long-window", "smooth-window")] = (5, 9, 4)


def _sample_args(spec: ind.IndicatorSpec) -> tuple[int, ...]:
    return SAMPLE_ARGS.get(spec.params, ())


@pytest.mark.parametrize("name", sorted(n for n, s in ind.INDICATORS.items() if s.needs_window))
def test_indicator_when_window_below_one_then_value_error(name: str) -> None:
    spec = ind.INDICATORS[name]
    zeros = (0,) * len(spec.params)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        spec.compute(np.array([1.0, 2.0, 3.0]), zeros)


@pytest.mark.parametrize("name", sorted(ind.INDICATORS))
def test_indicator_when_computed_then_first_valid_index_matches_its_spec(name: str) -> None:
    spec = ind.INDICATORS[name]
    args = _sample_args(spec)
    series = spec.compute(random_walk(60, seed=3), args)

    first = spec.first_valid_index(args)
    assert np.isnan(series[:first]).all()
    assert np.isfinite(series[first:]).all()


def test_value_at_last_bar_when_series_given_then_last_value_else_nan() -> None:
    assert ind.value_at_last_bar(np.array([1.0, 2.5])) == 2.5
    assert math.isnan(ind.value_at_last_bar(np.array([])))


def test_recommended_bars_when_recursive_smoothing_then_ten_windows_else_first_value() -> None:
    assert ind.INDICATORS["rsi"].recommended_bars(10) == 101
    assert ind.INDICATORS["moving-average-price"].recommended_bars(200) == 200
    assert ind.INDICATORS["cumulative-return"].recommended_bars(60) == 61


# -- TA-Lib agreement on a long deterministic random walk, after a 250-bar warm-up ----------

WARMUP = 250
CLOSES = random_walk(1500, seed=20240601, start=80.0, drift=0.0004, volatility=0.02)
RETURNS_PCT = talib.ROCP(CLOSES, timeperiod=1) * 100.0


def _agree(ours: ind.FloatArray, theirs: ind.FloatArray) -> None:
    np.testing.assert_allclose(ours[WARMUP:], theirs[WARMUP:], rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("window", [2, 9, 10, 14, 20, 60])
def test_rsi_when_compared_with_talib_then_equal(window: int) -> None:
    _agree(ind.rsi(CLOSES, window), talib.RSI(CLOSES, timeperiod=window))


@pytest.mark.parametrize("window", [1, 3, 20, 90, 200])
def test_moving_average_price_when_compared_with_talib_sma_then_equal(window: int) -> None:
    _agree(ind.moving_average_price(CLOSES, window), talib.SMA(CLOSES, timeperiod=window))


@pytest.mark.parametrize("window", [2, 10, 50, 200])
def test_ema_when_compared_with_talib_ema_then_equal(window: int) -> None:
    _agree(
        ind.exponential_moving_average_price(CLOSES, window), talib.EMA(CLOSES, timeperiod=window)
    )


@pytest.mark.parametrize("window", [2, 14, 90])
def test_moving_average_return_when_compared_with_talib_sma_of_rocp_then_equal(
    window: int,
) -> None:
    _agree(ind.moving_average_return(CLOSES, window), talib.SMA(RETURNS_PCT, timeperiod=window))


@pytest.mark.parametrize("window", [1, 20, 60, 252])
def test_cumulative_return_when_compared_with_talib_roc_then_equal(window: int) -> None:
    _agree(ind.cumulative_return(CLOSES, window), talib.ROC(CLOSES, timeperiod=window))


@pytest.mark.parametrize("window", [2, 6, 14, 60])
def test_stdev_return_when_compared_with_talib_stddev_of_rocp_then_equal(window: int) -> None:
    _agree(
        ind.stdev_return(CLOSES, window),
        talib.STDDEV(RETURNS_PCT, timeperiod=window, nbdev=1.0),
    )


@pytest.mark.parametrize("window", [2, 20, 60])
def test_max_drawdown_when_compared_with_a_plain_loop_then_equal(window: int) -> None:
    expected = np.full(len(CLOSES), np.nan)
    for end in range(window - 1, len(CLOSES)):
        peak, worst = -math.inf, 0.0
        for price in CLOSES[end - window + 1 : end + 1]:
            peak = max(peak, price)
            worst = max(worst, (peak - price) / peak * 100.0)
        expected[end] = worst
    _agree(ind.max_drawdown(CLOSES, window), expected)


@pytest.mark.parametrize("window", [2, 5, 20])
def test_stdev_price_when_compared_with_talib_stddev_of_closes_then_equal(window: int) -> None:
    _agree(ind.stdev_price(CLOSES, window), talib.STDDEV(CLOSES, timeperiod=window, nbdev=1.0))


@pytest.mark.parametrize(("short", "long"), [(12, 26), (5, 35)])
def test_ppo_when_compared_with_talib_ppo_on_emas_then_equal(short: int, long: int) -> None:
    theirs = talib.PPO(CLOSES, fastperiod=short, slowperiod=long, matype=1)

    _agree(ind.percentage_price_oscillator(CLOSES, short, long), theirs)


def test_ppo_signal_when_compared_with_talib_ema_of_ppo_then_equal() -> None:
    ppo = ind.percentage_price_oscillator(CLOSES, 12, 26)
    theirs = np.full(len(CLOSES), NAN)
    theirs[25:] = talib.EMA(ppo[25:], timeperiod=9)

    _agree(ind.percentage_price_oscillator_signal(CLOSES, 12, 26, 9), theirs)


# -- stdev-price and the PPO pair on hand-computed cases ---------------------------------------


def test_stdev_price_when_window_filled_then_population_std_in_price_units() -> None:
    # closes 1, 2, 3, 4: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / 4.
    _close(ind.stdev_price(np.array([1.0, 2, 3, 4]), 4), [NAN, NAN, NAN, math.sqrt(1.25)])
    _close(ind.stdev_price(np.array([10.0, 12.0, 12.0]), 2), [NAN, 1.0, 0.0])


def test_ppo_when_constant_prices_then_zero_from_the_long_window_on() -> None:
    series = ind.percentage_price_oscillator(np.full(10, 50.0), 2, 4)

    _close(series, [NAN, NAN, NAN, 0, 0, 0, 0, 0, 0, 0])


def test_ppo_when_prices_double_once_then_short_ema_leads_the_long_one() -> None:
    closes = np.array([10.0] * 4 + [20.0])
    # EMA(2): seed 10, then 10 + 2/3 x 10 = 16.67; EMA(4): seed 10, then 10 + 2/5 x 10 = 14.
    expected = (((10 + 2 / 3 * 10) / 14.0) - 1.0) * 100.0

    _close(ind.percentage_price_oscillator(closes, 2, 4), [NAN, NAN, NAN, 0.0, expected])


def test_ppo_signal_when_computed_then_first_value_at_long_plus_smooth_minus_two() -> None:
    series = ind.percentage_price_oscillator_signal(random_walk(40, seed=9), 3, 6, 4)

    assert np.isnan(series[:8]).all()
    assert np.isfinite(series[8:]).all()


def test_ppo_when_short_window_not_below_long_then_value_error() -> None:
    with pytest.raises(ValueError, match="short window 26 must be below long window 12"):
        ind.percentage_price_oscillator(CLOSES, 26, 12)


def test_recommended_bars_when_ppo_then_ten_long_windows() -> None:
    assert ind.INDICATORS["percentage-price-oscillator"].recommended_bars((12, 26)) == 261
    assert ind.INDICATORS["percentage-price-oscillator-signal"].recommended_bars((12, 26, 9)) == 261
    assert ind.INDICATORS["stdev-price"].recommended_bars(5) == 5
