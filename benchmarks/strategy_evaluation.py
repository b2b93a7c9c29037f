"""Strategy evaluation: the four bundled strategies on the bundled demo dataset.

* **one day**: all four strategies evaluated and consolidated at one as-of date on the
  lookback window the service fetches, with a fresh indicator cache each run (what one
  workflow pays); median and p95 over many runs. For information, the same for a whole
  service run (read the bars from the in-memory dataset, align, evaluate, build the event).
* **full history**: every session of the dataset evaluated day by day on one market value
  and one shared indicator cache (a backtest), total seconds.

Targets: one day <= 2 ms (median); the full history <= 10 s.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from alchemiser_marketdata import DatasetMarketData, start_for_bars
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR, to_market_data
from alchemiser_strategy.app import SignalEngine, load_strategy_files
from alchemiser_strategy.domain import IndicatorCache, WeightedStrategy, run_strategies
from alchemiser_strategy.settings import StrategySection
from alchemiser_strategy.signals import signal_payload

RUNS = int(os.environ.get("BENCH_STRATEGY_RUNS", "500"))
AS_OF = date(2015, 6, 15)
TARGET_DAY_MS = 2.0
TARGET_HISTORY_S = 10.0
PLACES = 12


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
        f"  one day ({AS_OF}, {len(day_market)} bars, {RUNS} runs): "
        f"median {day_median:.3f} ms, p95 {day_p95:.3f} ms"
    )
    print(f"  target median <= {TARGET_DAY_MS} ms        : {_verdict(day_median <= TARGET_DAY_MS)}")
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
