"""Strategy evaluation: the bundled strategies on the demo dataset, and a large generated one.

* **one year, per day**: the four bundled strategies evaluated and consolidated on each of the
  last 252 sessions of the demo dataset, on one market value and one indicator cache shared
  across files and days; milliseconds per day for the four together (target <= 2 ms) and, for
  information, for each file alone.
* **one day**: the same four at one as-of date on the lookback window the service fetches, with
  a fresh indicator cache each run (what one workflow pays); median and p95 over many runs
  (no target: it is dominated by computing every indicator series once). For information,
  the same for a whole service run (read the bars, align, evaluate, build the event).
* **full history**: every session of the dataset day by day on one shared cache (a backtest),
  total seconds (target <= 10 s).
* **large generated strategy**: :func:`generated_strategy` writes a Composer-style file of
  about 190 KB (thousands of nodes, filters and inverse volatility over groups, every
  indicator of the DSL) as large and nested as the largest files of the original system;
  evaluated on each of 252 days of synthetic bars after its lookback, one shared cache;
  milliseconds per day (target <= 50 ms).
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from alchemiser_marketdata import DatasetMarketData, start_for_bars
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR, to_market_data
from alchemiser_strategy.app import SignalEngine, load_strategy_files
from alchemiser_strategy.domain import (
    IndicatorCache,
    MarketData,
    Strategy,
    WeightedStrategy,
    evaluate,
    load_strategy,
    run_strategies,
)
from alchemiser_strategy.domain.sample_prices import market_from_paths, random_walk
from alchemiser_strategy.settings import StrategySection
from alchemiser_strategy.signals import signal_payload

RUNS = int(os.environ.get("BENCH_STRATEGY_RUNS", "500"))
AS_OF = date(2015, 6, 15)
TARGET_DAY_MS = 2.0
TARGET_HISTORY_S = 10.0
TARGET_LARGE_DAY_MS = 50.0
YEAR = 252
LARGE_SIZE = 190_000
PLACES = 12

_UNIVERSE = (
    *("SPY", "QQQ", "TQQQ", "SQQQ", "UVXY", "BIL", "TLT", "IEF", "PSQ", "SOXL", "SOXS", "TECL"),
    *("TECS", "SPXL", "SPXS", "UPRO", "XLK", "KMLM", "XLP", "XLY", "XLF", "VOX", "VTV", "GLD"),
    *("SLV", "UUP", "BTAL", "SVIX", "LABU", "LABD", "FAS", "FAZ", "TMF", "TMV", "SHY", "BND"),
    *("AGG", "EEM", "DBC"),
)
_RANKINGS = (
    "(rsi {:window 10})",
    "(cumulative-return {:window 20})",
    "(moving-average-return {:window 15})",
    "(stdev-return {:window 12})",
    "(max-drawdown {:window 30})",
    "(stdev-price {:window 5})",
    "(exponential-moving-average-price {:window 8})",
    "(percentage-price-oscillator {:short-window 12, :long-window 26})",
)


def _timings_ms(call: Callable[[], object], runs: int) -> tuple[float, float]:
    call()  # warm up imports and caches outside the measurement
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


class _Generator:
    """Writes a deterministic Composer-style strategy: ifs, groups, filters over groups."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._groups = 0

    def _symbol(self) -> str:
        return self._random.choice(_UNIVERSE)

    def _condition(self) -> str:
        pick = self._random.random()
        symbol, other = self._symbol(), self._symbol()
        if pick < 0.55:
            return f'(> (rsi "{symbol}" {{:window 10}}) {self._random.randint(25, 80)})'
        if pick < 0.7:
            return f'(< (rsi "{symbol}" {{:window 10}}) (rsi "{other}" {{:window 10}}))'
        if pick < 0.8:
            window = self._random.choice((20, 50, 200))
            return (
                f'(> (current-price "{symbol}") '
                f'(moving-average-price "{symbol}" {{:window {window}}}))'
            )
        if pick < 0.9:
            return f'(< (cumulative-return "{symbol}" {{:window 5}}) -{self._random.randint(2, 9)})'
        return (
            f'(> (percentage-price-oscillator-signal "{symbol}" '
            "{:short-window 12, :long-window 26, :smooth-window 9}) 0)"
        )

    def _group(self, depth: int, indent: int) -> str:
        self._groups += 1
        name = f"g{self._groups}"
        children = [self.node(depth - 1, indent + 2) for _ in range(self._random.randint(1, 2))]
        return f'(group "{name}" [(weight-equal [\n' + "\n".join(children) + "])])"

    def node(self, depth: int, indent: int = 0) -> str:
        """One portfolio node of at most ``depth`` levels of decisions."""
        pad = " " * indent
        if depth <= 0:
            return f'{pad}(asset "{self._symbol()}" nil)'
        pick = self._random.random()
        if pick < 0.5:
            return (
                f"{pad}(if {self._condition()}\n"
                f"{self.node(depth - 1, indent + 1)}\n{self.node(depth - 1, indent + 1)})"
            )
        if pick < 0.75:
            groups = [
                pad + " " + self._group(depth - 1, indent + 2)
                for _ in range(self._random.randint(2, 3))
            ]
            select = self._random.choice(("select-top", "select-bottom"))
            return (
                f"{pad}(filter {self._random.choice(_RANKINGS)} ({select} 1)\n"
                f"{pad} [" + "\n".join(groups).lstrip() + "])"
            )
        if pick < 0.85:
            groups = [pad + " " + self._group(depth - 1, indent + 2) for _ in range(2)]
            joined = "\n".join(groups).lstrip()
            return f"{pad}(weight-inverse-volatility 14\n{pad} [{joined}])"
        if pick < 0.92:
            return (
                f"{pad}(weight-specified 0.6 {self.node(depth - 1, indent + 1).strip()}\n"
                f"{pad} 0.4 {self.node(depth - 1, indent + 1).strip()})"
            )
        assets = " ".join(f'(asset "{self._symbol()}" nil)' for _ in range(3))
        return f"{pad}(filter (rsi {{:window 10}}) (select-bottom 2) [{assets}])"


def generated_strategy(size: int = LARGE_SIZE, seed: int = 7) -> str:
    """A strategy file of about ``size`` characters (see the module docstring)."""
    generator = _Generator(seed)
    branches: list[str] = []
    while sum(len(branch) for branch in branches) < size:
        branches.append(generator.node(6, 3))
    body = "\n".join(branches)
    return (
        '(defsymphony "generated" {:asset-class "EQUITIES", :rebalance-frequency :daily}\n'
        f" (weight-equal\n  [{body.strip()}]))\n"
    )


def _synthetic_market(strategy: Strategy, days: int) -> MarketData:
    length = strategy.lookback_bars + days
    return market_from_paths(
        {
            symbol: random_walk(length, seed=zlib.crc32(symbol.encode()), volatility=0.025)
            for symbol in strategy.symbols
        }
    )


def _evaluator(
    strategy: Strategy, market: MarketData, cache: IndicatorCache
) -> Callable[[int], object]:
    """Evaluate ``strategy`` on day ``index`` of ``market``, on the shared ``cache``."""
    return lambda index: evaluate(strategy, market, cache=cache, index=index)


def _per_day_ms(evaluate_day: Callable[[int], object], first: int, last: int) -> float:
    started = time.perf_counter()
    for index in range(first, last):
        evaluate_day(index)
    return (time.perf_counter() - started) * 1000 / (last - first)


def main() -> dict[str, Any]:
    """Run both measurements, print them with their targets and return the figures."""
    section = StrategySection()
    strategies: tuple[WeightedStrategy, ...] = load_strategy_files(
        section.strategy_files(), section.weights
    )
    dataset = DatasetMarketData(DEMO_DATASET_DIR)
    engine = SignalEngine(strategies, dataset, lambda _now: dataset.trading_days()[-1])
    window = dataset.get_daily_bars(
        engine.symbols, start_for_bars(AS_OF, engine.lookback_bars), AS_OF
    )
    day_market = to_market_data(window)
    day_median, day_p95 = _timings_ms(
        lambda: run_strategies(strategies, day_market, places=PLACES), RUNS
    )
    now = datetime.now(UTC)
    correlation_id = uuid.uuid4()
    run_median, run_p95 = _timings_ms(
        lambda: signal_payload(engine.run(AS_OF, now), correlation_id), max(RUNS // 5, 20)
    )

    everything = dataset.get_daily_bars(engine.symbols, date.min, date.max)
    year_market = to_market_data(everything)
    year_cache = IndicatorCache(year_market)
    year_from = len(year_market) - YEAR
    year_ms = _per_day_ms(
        lambda i: run_strategies(strategies, year_market, cache=year_cache, index=i, places=PLACES),
        year_from,
        len(year_market),
    )
    per_file_ms = {}
    for item in strategies:
        cache = IndicatorCache(year_market)
        per_file_ms[item.strategy.file_name] = _per_day_ms(
            _evaluator(item.strategy, year_market, cache),
            year_from,
            len(year_market),
        )

    text = generated_strategy()
    compile_started = time.perf_counter()
    large = load_strategy(text, "generated.clj")
    compile_ms = (time.perf_counter() - compile_started) * 1000
    large_market = _synthetic_market(large, YEAR)
    large_cache = IndicatorCache(large_market)
    large_ms = _per_day_ms(
        lambda i: evaluate(large, large_market, cache=large_cache, index=i),
        len(large_market) - YEAR,
        len(large_market),
    )

    started = time.perf_counter()
    history = to_market_data(everything)
    cache = IndicatorCache(history)
    cash_days = 0
    for index in range(len(history)):
        portfolio = run_strategies(strategies, history, cache=cache, index=index, places=PLACES)
        cash_days += portfolio.all_cash
    history_s = time.perf_counter() - started

    print(f"strategy evaluation (4 strategies, {len(engine.symbols)} symbols, demo dataset)")
    print(
        f"  one year ({YEAR} sessions to {year_market.as_of}, shared cache): "
        f"{year_ms:.3f} ms per day for the four together"
    )
    print(f"  target <= {TARGET_DAY_MS} ms per day     : {_verdict(year_ms <= TARGET_DAY_MS)}")
    for name, value in per_file_ms.items():
        print(f"    {name:<14} alone: {value:.3f} ms per day")
    print(
        f"  generated strategy ({len(text) // 1000} KB, {text.count('(')} forms, "
        f"{len(large.symbols)} symbols, lookback {large.lookback_bars} bars; compiled in "
        f"{compile_ms:.0f} ms): {large_ms:.2f} ms per day over {YEAR} days, shared cache"
    )
    print(
        f"  target <= {TARGET_LARGE_DAY_MS} ms per day    : "
        f"{_verdict(large_ms <= TARGET_LARGE_DAY_MS)}"
    )
    print(
        f"  one day ({AS_OF}, {len(day_market)} bars, {RUNS} runs): "
        f"median {day_median:.3f} ms, p95 {day_p95:.3f} ms (fresh cache, no target)"
    )
    print(
        f"  one service run (read bars, align, evaluate, payload): "
        f"median {run_median:.3f} ms, p95 {run_p95:.3f} ms (no target)"
    )
    print(
        f"  full history ({len(history)} sessions {history.dates[0]}..{history.dates[-1]}, "
        f"day by day, {cash_days} all-cash warm-up days): {history_s:.3f} s "
        f"({history_s * 1000 / len(history):.3f} ms per day)"
    )
    print(
        f"  target <= {TARGET_HISTORY_S} s             : {_verdict(history_s <= TARGET_HISTORY_S)}"
    )
    return {
        "year_per_day_ms": round(year_ms, 4),
        "year_per_day_ms_by_file": {name: round(v, 4) for name, v in per_file_ms.items()},
        "generated_strategy_kb": len(text) // 1000,
        "generated_per_day_ms": round(large_ms, 3),
        "target_generated_per_day_ms": TARGET_LARGE_DAY_MS,
        "one_day_median_ms": round(day_median, 4),
        "one_day_p95_ms": round(day_p95, 4),
        "service_run_median_ms": round(run_median, 4),
        "full_history_s": round(history_s, 3),
        "sessions": len(history),
        "target_one_day_ms": TARGET_DAY_MS,
        "target_full_history_s": TARGET_HISTORY_S,
    }


if __name__ == "__main__":
    main()
