"""Technical indicators over a close-price series, as full float64 series.

Every function takes a 1-D array of positive closes (no NaN) and returns an array of the same
length whose first bars are NaN until the window is filled ("warm-up"); ``value_at_last_bar``
reads the final value. Floats are fine here: indicators are statistics on prices, and only
allocation weights (Decimal) leave the domain. The definitions match TA-Lib where TA-Lib has the
same indicator (tests check this to 1e-6 relative):

=====================================  ==================================  ===============
DSL name                               definition                          TA-Lib match
=====================================  ==================================  ===============
``rsi``                                Wilder: seed = mean of the first n  RSI(n)
                                       gains/losses, then (prev*(n-1)+x)/n
``current-price``                      the close itself                    --
``moving-average-price``               simple mean of the last n closes    SMA(n)
``exponential-moving-average-price``   alpha = 2/(n+1), seeded with SMA(n) EMA(n)
``moving-average-return``              mean of the last n daily % changes  SMA(ROCP*100, n)
``cumulative-return``                  (P / P[-n] - 1) x 100               ROC(n)
``stdev-return``                       population std (ddof=0) of the      STDDEV(ROCP*100,
                                       last n daily % changes              n, nbdev=1)
``max-drawdown``                       largest % fall from a running peak  --
                                       within the last n closes, >= 0
``stdev-price``                        population std (ddof=0) of the      STDDEV(close,
                                       last n closes, in price units       n, nbdev=1)
``percentage-price-oscillator``        (EMA(s) / EMA(l) - 1) x 100, both   --
                                       EMAs as above (s < l)
``percentage-price-oscillator-signal`` EMA(m) of the PPO series, seeded    --
                                       with the SMA of its first m values
=====================================  ==================================  ===============

Most indicators take one ``:window``; the two PPO indicators take ``:short-window`` and
``:long-window`` (and the signal ``:smooth-window``); ``current-price`` takes none. An
indicator's arguments are the tuple of those integers in that order (``IndicatorSpec.params``).

``stdev-return`` uses ddof=0 so it equals TA-Lib's STDDEV (the original Alchemiser used
pandas' ddof=1; the ratio sqrt(n/(n-1)) is common to all children, so inverse-volatility
weights and rankings are unaffected by the choice). The RSI of a window with neither gains nor
losses is 50 (neutral; TA-Lib reports 0 there). The recursive smoothings (RSI, EMA) are
sequential by nature and run as a plain loop; everything else is vectorised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "INDICATORS",
    "FloatArray",
    "IndicatorArgs",
    "IndicatorSpec",
    "as_args",
    "cumulative_return",
    "current_price",
    "daily_returns_percent",
    "exponential_moving_average_price",
    "max_drawdown",
    "moving_average_price",
    "moving_average_return",
    "percentage_price_oscillator",
    "percentage_price_oscillator_signal",
    "rsi",
    "stdev_price",
    "stdev_return",
    "value_at_last_bar",
]

FloatArray = npt.NDArray[np.float64]

IndicatorArgs = tuple[int, ...]
"""An indicator's integer parameters in the order of its spec's ``params``."""

NEUTRAL_RSI = 50.0


def _check(closes: FloatArray, window: int) -> FloatArray:
    if window < 1:
        raise ValueError(f"window must be a positive integer, got {window}")
    return np.asarray(closes, dtype=np.float64)


def _empty(length: int) -> FloatArray:
    return np.full(length, np.nan, dtype=np.float64)


def daily_returns_percent(closes: FloatArray) -> FloatArray:
    """Daily % change: element t is (P[t] / P[t-1] - 1) x 100; element 0 is NaN."""
    prices = np.asarray(closes, dtype=np.float64)
    out = _empty(len(prices))
    if len(prices) > 1:
        out[1:] = (prices[1:] / prices[:-1] - 1.0) * 100.0
    return out


def rsi(closes: FloatArray, window: int) -> FloatArray:
    """Wilder's RSI; first value at index ``window``; 100 when there are no losses."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) <= window:
        return out
    deltas = np.diff(prices)
    gains = np.where(deltas > 0.0, deltas, 0.0)
    losses = np.where(deltas < 0.0, -deltas, 0.0)
    avg_gain = float(gains[:window].mean())
    avg_loss = float(losses[:window].mean())
    values = [_rsi_value(avg_gain, avg_loss)]
    keep = window - 1
    # _rsi_value inlined: this loop runs for every bar of every RSI series
    for gain, loss in zip(gains[window:].tolist(), losses[window:].tolist(), strict=True):
        avg_gain = (avg_gain * keep + gain) / window
        avg_loss = (avg_loss * keep + loss) / window
        total = avg_gain + avg_loss
        values.append(NEUTRAL_RSI if total == 0.0 else 100.0 * avg_gain / total)
    out[window:] = values
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    total = avg_gain + avg_loss
    if total == 0.0:
        return NEUTRAL_RSI
    # 100 - 100 / (1 + RS) rewritten so that zero losses give exactly 100.
    return 100.0 * avg_gain / total


def current_price(closes: FloatArray, window: int = 1) -> FloatArray:
    """The close itself (``window`` is accepted for a uniform signature and ignored)."""
    del window
    return np.array(closes, dtype=np.float64)


def moving_average_price(closes: FloatArray, window: int) -> FloatArray:
    """Simple moving average of the last ``window`` closes; first value at ``window - 1``."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) >= window:
        out[window - 1 :] = sliding_window_view(prices, window).mean(axis=1)
    return out


def exponential_moving_average_price(closes: FloatArray, window: int) -> FloatArray:
    """EMA with alpha = 2/(n+1), seeded with the SMA of the first n closes (TA-Lib style)."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) < window:
        return out
    alpha = 2.0 / (window + 1.0)
    value = float(prices[:window].mean())
    values = [value]
    for price in prices[window:].tolist():
        value += alpha * (price - value)
        values.append(value)
    out[window - 1 :] = values
    return out


def moving_average_return(closes: FloatArray, window: int) -> FloatArray:
    """Mean of the last ``window`` daily % changes; first value at index ``window``."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) > window:
        returns = daily_returns_percent(prices)[1:]
        out[window:] = sliding_window_view(returns, window).mean(axis=1)
    return out


def cumulative_return(closes: FloatArray, window: int) -> FloatArray:
    """(P[t] / P[t - window] - 1) x 100; first value at index ``window``."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) > window:
        out[window:] = (prices[window:] / prices[:-window] - 1.0) * 100.0
    return out


def stdev_return(closes: FloatArray, window: int) -> FloatArray:
    """Population std (ddof=0) of the last ``window`` daily % changes; first at ``window``."""
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) > window:
        returns = daily_returns_percent(prices)[1:]
        out[window:] = sliding_window_view(returns, window).std(axis=1)
    return out


def max_drawdown(closes: FloatArray, window: int) -> FloatArray:
    """Largest % fall from a running peak to a later close within the last ``window`` closes.

    A positive number (10.0 means a 10% drawdown); 0 when the window only rises. The first
    value is at index ``window - 1`` (the window counts closes, as in the original Alchemiser).
    """
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) >= window:
        windows = sliding_window_view(prices, window)
        peaks = np.maximum.accumulate(windows, axis=1)
        out[window - 1 :] = (1.0 - windows / peaks).max(axis=1) * 100.0
    return out


def stdev_price(closes: FloatArray, window: int) -> FloatArray:
    """Population std (ddof=0) of the last ``window`` closes, in price units.

    The first value is at index ``window - 1``.
    """
    prices = _check(closes, window)
    out = _empty(len(prices))
    if len(prices) >= window:
        out[window - 1 :] = sliding_window_view(prices, window).std(axis=1)
    return out


def _ema_of(values: FloatArray, window: int) -> FloatArray:
    """EMA (alpha 2/(n+1)) of ``values`` seeded with the SMA of their first n finite values."""
    out = _empty(len(values))
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) < window:
        return out
    first = int(finite[0])
    tail = values[first:]
    alpha = 2.0 / (window + 1.0)
    value = float(tail[:window].mean())
    smoothed = [value]
    for item in tail[window:].tolist():
        value += alpha * (item - value)
        smoothed.append(value)
    out[first + window - 1 :] = smoothed
    return out


def percentage_price_oscillator(
    closes: FloatArray, short_window: int, long_window: int
) -> FloatArray:
    """(EMA(short) / EMA(long) - 1) x 100; first value at ``long_window - 1``."""
    prices = _check(closes, min(short_window, long_window))
    if short_window >= long_window:
        raise ValueError(f"short window {short_window} must be below long window {long_window}")
    return (
        exponential_moving_average_price(prices, short_window)
        / exponential_moving_average_price(prices, long_window)
        - 1.0
    ) * 100.0


def percentage_price_oscillator_signal(
    closes: FloatArray, short_window: int, long_window: int, smooth_window: int
) -> FloatArray:
    """EMA(smooth) of the PPO series; first value at ``long_window + smooth_window - 2``."""
    if smooth_window < 1:
        raise ValueError(f"window must be a positive integer, got {smooth_window}")
    return _ema_of(percentage_price_oscillator(closes, short_window, long_window), smooth_window)


def value_at_last_bar(series: FloatArray) -> float:
    """The series' value at its last bar (NaN while still warming up)."""
    return float(series[-1]) if len(series) else float("nan")


_WINDOW = ("window",)
_PPO = ("short-window", "long-window")
_PPO_SIGNAL = ("short-window", "long-window", "smooth-window")


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """A DSL indicator: its function, its integer parameters and its warm-up rule.

    ``function(closes, *args)`` computes the series; ``params`` names the option keys of
    ``args`` in order (``()`` for ``current-price``); ``first_valid`` gives the index of the
    first value for data that starts at index 0.
    """

    name: str
    function: Callable[..., FloatArray]
    params: tuple[str, ...]
    first_valid: Callable[[IndicatorArgs], int]
    #: recursive smoothings need extra history to forget their seed.
    converges: bool = False

    @property
    def needs_window(self) -> bool:
        """Whether the indicator takes parameters at all (every one but ``current-price``)."""
        return bool(self.params)

    def first_valid_index(self, args: IndicatorArgs | int) -> int:
        """Index of the first non-NaN value for data that starts at index 0."""
        return self.first_valid(as_args(args)) if self.params else 0

    def recommended_bars(self, args: IndicatorArgs | int) -> int:
        """Bars to fetch so the value at the last bar is defined (and converged, for RSI/EMA/PPO).

        Recursive smoothings get ten of their longest window of history: the seed's weight falls
        below 1e-4.
        """
        values = as_args(args)
        needed = self.first_valid_index(values) + 1
        return max(needed, 10 * max(values) + 1) if self.converges and values else needed

    def compute(self, closes: FloatArray, args: IndicatorArgs | int) -> FloatArray:
        """The indicator series over ``closes`` with ``args`` (only as many as ``params``)."""
        return self.function(closes, *as_args(args)[: len(self.params)])


def as_args(args: IndicatorArgs | int) -> IndicatorArgs:
    """``10`` -> ``(10,)``; a tuple is returned as it is."""
    return (args,) if isinstance(args, int) else tuple(args)


def _first(offset: int) -> Callable[[IndicatorArgs], int]:
    return lambda args: args[0] + offset


INDICATORS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (
        IndicatorSpec("rsi", rsi, _WINDOW, _first(0), converges=True),
        IndicatorSpec("current-price", current_price, (), lambda _args: 0),
        IndicatorSpec("moving-average-price", moving_average_price, _WINDOW, _first(-1)),
        IndicatorSpec(
            "exponential-moving-average-price",
            exponential_moving_average_price,
            _WINDOW,
            _first(-1),
            converges=True,
        ),
        IndicatorSpec("moving-average-return", moving_average_return, _WINDOW, _first(0)),
        IndicatorSpec("cumulative-return", cumulative_return, _WINDOW, _first(0)),
        IndicatorSpec("stdev-return", stdev_return, _WINDOW, _first(0)),
        IndicatorSpec("max-drawdown", max_drawdown, _WINDOW, _first(-1)),
        IndicatorSpec("stdev-price", stdev_price, _WINDOW, _first(-1)),
        IndicatorSpec(
            "percentage-price-oscillator",
            percentage_price_oscillator,
            _PPO,
            lambda args: args[1] - 1,
            converges=True,
        ),
        IndicatorSpec(
            "percentage-price-oscillator-signal",
            percentage_price_oscillator_signal,
            _PPO_SIGNAL,
            lambda args: args[1] + args[2] - 2,
            converges=True,
        ),
    )
}
