"""The bundled demo dataset: coverage, one calendar, provenance labels, usable by the domain."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from alchemiser_marketdata import (
    DatasetMarketData,
    lookback_start,
    market_snapshot_id,
    start_for_bars,
)
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR, to_market_data
from alchemiser_strategy.domain import WeightedStrategy, load_strategy, run_strategies

SERVICE = Path(__file__).resolve().parents[2]
DEMO = SERVICE / "data" / "demo"
STRATEGIES = SERVICE / "strategies"
FIRST, LAST = date(2005, 1, 3), date(2018, 12, 31)
REAL = {"^GSPC", "^IXIC"}
BRIEF = """
SPY IOO TQQQ VTV XLF VOX UVXY BTAL UPRO SMR BWXT LEU EXC NLR OKLO PSQ SQQQ QQQ TLT IEF
TECL BIL SPXL XLK KMLM BSV QQQE VOOG VOOV XLP XLY FAS SOXL LABU SVIX
"""
BRIEF_SYMBOLS = frozenset(BRIEF.split())


@cache
def demo() -> DatasetMarketData:
    return DatasetMarketData(DEMO)


def test_demo_dataset_dir_when_resolved_then_points_at_the_bundled_data() -> None:
    assert DEMO_DATASET_DIR == DEMO
    assert (DEMO_DATASET_DIR / "metadata.json").is_file()


def strategy_symbols() -> set[str]:
    pattern = re.compile(r'\((?:asset|rsi|[a-z-]+-(?:price|return)|max-drawdown)\s+"([^"]+)"')
    return {s for path in STRATEGIES.glob("*.clj") for s in pattern.findall(path.read_text())}


def test_demo_when_loaded_then_covers_every_strategy_symbol() -> None:
    symbols = strategy_symbols()

    assert len(symbols) >= 30  # the pattern really found the strategies' symbols
    assert symbols <= demo().symbols
    assert demo().symbols >= BRIEF_SYMBOLS
    assert demo().symbols == BRIEF_SYMBOLS | symbols | REAL


def test_demo_when_loaded_then_every_symbol_on_the_same_sessions() -> None:
    calendar = demo().trading_days()

    assert calendar[0] == FIRST
    assert calendar[-1] == LAST
    assert len(calendar) == 3523
    for symbol, history in demo().histories.items():
        assert history.days == calendar, symbol
    assert date(2012, 10, 29) not in calendar  # hurricane Sandy closed the exchange
    assert all(day.weekday() < 5 for day in calendar)


def test_demo_metadata_when_read_then_only_real_indexes_are_not_synthetic() -> None:
    metadata = demo().metadata

    assert set(metadata) == demo().symbols
    assert {s for s, info in metadata.items() if not info.synthetic} == REAL
    for symbol in BRIEF_SYMBOLS:
        info = metadata[symbol]
        assert info.synthetic, symbol
        assert info.method and info.source, symbol


def test_demo_readme_when_read_then_lists_every_symbol_with_its_label() -> None:
    readme = (DEMO / "README.md").read_text(encoding="utf-8")

    for symbol, info in demo().metadata.items():
        row = f"| `{symbol}` | {'yes' if info.synthetic else 'no'} | {info.method} |"
        assert row in readme, symbol
    assert "build_demo_dataset.py" in readme


def test_demo_spy_proxy_when_compared_then_tenth_of_real_index() -> None:
    spy, gspc = demo().histories["SPY"], demo().histories["^GSPC"]

    for ours, real in zip(spy.close_values, gspc.close_values, strict=True):
        assert abs(ours - real / 10) <= Decimal("0.01")


def test_demo_leveraged_proxy_when_compared_then_three_times_daily_return() -> None:
    upro, spy = demo().histories["UPRO"].closes, demo().histories["SPY"].closes
    upro_returns = upro[1:] / upro[:-1] - 1
    spy_returns = spy[1:] / spy[:-1] - 1

    gap = abs(upro_returns - 3 * spy_returns)
    assert float(gap.max()) < 0.002  # rounding to cents and the fee


def test_demo_bars_when_read_then_prices_consistent_and_above_floor() -> None:
    for symbol, history in demo().histories.items():
        for bar in history.bars:
            assert bar.low <= min(bar.open, bar.close), (symbol, bar.date)
            assert bar.high >= max(bar.open, bar.close), (symbol, bar.date)
        if symbol not in REAL:
            assert min(b.low for b in history.bars) >= Decimal("5.00"), symbol


@pytest.mark.parametrize("as_of", [date(2008, 10, 10), date(2013, 6, 28), LAST])
def test_demo_when_strategies_run_then_every_file_allocates(as_of: date) -> None:
    files = sorted(STRATEGIES.glob("*.clj"))
    strategies = [
        WeightedStrategy(load_strategy(path.read_text(encoding="utf-8"), path.name), Decimal(1))
        for path in files
    ]
    bars_needed = max(s.strategy.lookback_bars for s in strategies)
    max_window = max(s.strategy.max_window for s in strategies)
    start = min(start_for_bars(as_of, bars_needed), lookback_start(as_of, max_window))
    symbols = {symbol for s in strategies for symbol in s.strategy.symbols}
    histories = demo().get_daily_bars(symbols, start, as_of)

    portfolio = run_strategies(strategies, to_market_data(histories))

    assert portfolio.failures == {}
    assert sum(portfolio.weights.values()) == Decimal(1)
    assert set(portfolio.weights) <= symbols
    assert len(market_snapshot_id(histories, as_of)) == 64
