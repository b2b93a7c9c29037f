"""Backtest speed: sessions per second in process and through the pipeline, same strategies.

**What runs.** :class:`alchemiser_backtest.session.Backtest` as ``alchemiser backtest`` runs it,
with the default strategies (the four bundled files and their weights), 100,000 of cash, SPY
as benchmark, 5 bps of slippage and no commission, on the demo dataset loaded once and shared
by both runs; each run writes its state to a fresh temporary folder. In this order:

1. **in process** (``Mode.INPROCESS``): the first ``BENCH_BACKTEST_INPROCESS_SESSIONS``
   sessions from 2008-01-02 (default 253: 2008-01-02 to 2008-12-31), every workflow's three
   steps called in this process on the in-memory exchange, the strategy steps of the sessions
   to come computed ahead in a forked copy of it where the machine has a second core
   (``strategy_ahead`` in the figures; see :mod:`alchemiser_backtest.ahead`);
2. **pipeline** (``Mode.PIPELINE``): the first ``BENCH_BACKTEST_SESSIONS`` sessions from
   2008-01-02 (default 120) on the embedded stack (broker, registry, exchange and the three
   services as processes), one workflow per session through Kafka.

**How.** The progress callback stamps ``time.perf_counter()`` at every ``session_done`` (and
does nothing else). ``sessions_per_s`` is (sessions - 1) over the time from the first stamp to
the last: the start-up (``Backtest.prepare`` and ``open``, which starts the stack for the
pipeline) and the first session, which warms caches and connections, are left out and
reported as ``startup_s`` (split into ``open_s`` and ``first_session_s``). ``session_ms`` is
the spread of the gaps between consecutive stamps (one session each, checkpoint included).
Loading the dataset (``dataset_load_s``) is once for both and in neither.

For information: the strategy files and weights, each run's trades and failed sessions, and
``modes_agree``: both runs start at the same session, so the in-process run's first records
cover the pipeline's range; true when the sessions and each session's closing equity
(``record.day.equity``, exact decimals) are equal over the common sessions.

Targets: >= 300 sessions per second in process and >= 25 through the pipeline, over the
default session counts (:data:`TARGET_INPROCESS_SESSIONS`, :data:`TARGET_PIPELINE_SESSIONS`);
a smoke run with fewer sessions does not meet them, whatever its speed.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from alchemiser_backtest.ahead import can_work_ahead
from alchemiser_backtest.records import SessionRecord
from alchemiser_backtest.session import Backtest, Mode
from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.settings import STRATEGY_FILE_SUFFIX
from benchmarks.stats import spread

__all__ = [
    "INPROCESS_SESSIONS",
    "PIPELINE_SESSIONS",
    "TARGET_INPROCESS_SESSIONS",
    "TARGET_INPROCESS_SESSIONS_PER_S",
    "TARGET_PIPELINE_SESSIONS",
    "TARGET_PIPELINE_SESSIONS_PER_S",
    "main",
]

START = date(2008, 1, 2)
TARGET_INPROCESS_SESSIONS = 253
"""The in-process target holds over this many sessions (all of 2008 in the demo dataset)."""
TARGET_PIPELINE_SESSIONS = 120
"""The pipeline target holds over this many sessions."""
INPROCESS_SESSIONS = int(
    os.environ.get("BENCH_BACKTEST_INPROCESS_SESSIONS", str(TARGET_INPROCESS_SESSIONS))
)
PIPELINE_SESSIONS = int(os.environ.get("BENCH_BACKTEST_SESSIONS", str(TARGET_PIPELINE_SESSIONS)))
TARGET_INPROCESS_SESSIONS_PER_S = 300.0
TARGET_PIPELINE_SESSIONS_PER_S = 25.0
CASH = Decimal(100000)
BENCHMARK = "SPY"
SLIPPAGE_BPS = Decimal(5)


class _Clock:
    """The progress callback: one ``perf_counter`` stamp per completed session, nothing else."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def session_done(self, record: SessionRecord, done: int, total: int) -> None:
        self.stamps.append(time.perf_counter())


def _sessions(dataset: DatasetMarketData, count: int) -> tuple[date, ...]:
    sessions = tuple(day for day in dataset.trading_days() if day >= START)[: max(count, 2)]
    if len(sessions) < 2:
        raise RuntimeError(f"the dataset has fewer than two sessions from {START}")
    return sessions


def _prepare(
    mode: Mode, sessions: Sequence[date], dataset: DatasetMarketData, out_dir: Path
) -> Backtest:
    return Backtest.prepare(
        start=sessions[0],
        end=sessions[-1],
        strategies_dir=None,
        cash=CASH,
        mode=mode,
        out_dir=out_dir,
        benchmark=BENCHMARK,
        slippage_bps=SLIPPAGE_BPS,
        commission_bps=Decimal(0),
        commission_per_share=Decimal(0),
        commission_min=Decimal(0),
        dataset_dir=Path(DEMO_DATASET_DIR),
        dataset=dataset,
    )


def _run(
    mode: Mode, sessions: Sequence[date], dataset: DatasetMarketData
) -> tuple[Backtest, list[SessionRecord], dict[str, Any]]:
    """One backtest over ``sessions``: its records and timings."""
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix=f"bench-backtest-{mode.value}-") as tmp:
        started = time.perf_counter()
        backtest = _prepare(mode, sessions, dataset, Path(tmp) / "out")
        with backtest.open(lambda line: print(f"  {mode.value}: {line}"), resume=False) as running:
            opened = time.perf_counter()
            records = running.run(resume=False, progress=clock)
            finished = time.perf_counter()
        stopped = time.perf_counter()
    stamps = clock.stamps
    if len(records) != len(sessions) or len(stamps) != len(sessions):
        raise RuntimeError(
            f"{mode.value}: {len(records)} records and {len(stamps)} progress calls "
            f"for {len(sessions)} sessions"
        )
    measured = len(stamps) - 1
    elapsed = stamps[-1] - stamps[0]
    gaps_ms = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(stamps)]
    figures: dict[str, Any] = {
        "from": sessions[0].isoformat(),
        "to": sessions[-1].isoformat(),
        "sessions": len(records),
        "measured_sessions": measured,
        "measured_s": round(elapsed, 3),
        "sessions_per_s": round(measured / elapsed, 1) if elapsed > 0 else None,
        "session_ms": spread(gaps_ms),
        "startup_s": round(stamps[0] - started, 3),
        "open_s": round(opened - started, 3),
        "first_session_s": round(stamps[0] - opened, 3),
        "run_s": round(finished - opened, 3),
        "stop_s": round(stopped - finished, 3),
        "trades": sum(len(record.trades) for record in records),
        "failed_sessions": sum(record.day.outcome != "completed" for record in records),
        "final_equity": str(records[-1].day.equity),
    }
    if mode is Mode.INPROCESS:
        figures["strategy_ahead"] = backtest.work_ahead and can_work_ahead()
    return backtest, records, figures


def _agreement(
    inprocess: Sequence[SessionRecord], pipeline: Sequence[SessionRecord]
) -> tuple[bool, dict[str, Any]]:
    """Equal sessions and closing equity over the sessions both runs have (from the start);
    the details: how many were compared, the first session that differs, the equity there."""
    common = min(len(inprocess), len(pipeline))
    first_difference = next(
        (
            theirs.day.session.isoformat()
            for ours, theirs in zip(inprocess[:common], pipeline[:common], strict=True)
            if (ours.day.session, ours.day.equity) != (theirs.day.session, theirs.day.equity)
        ),
        None,
    )
    return common > 0 and first_difference is None, {
        "compared_sessions": common,
        "first_difference": first_difference,
        "inprocess_equity_at_common_end": str(inprocess[common - 1].day.equity) if common else None,
        "pipeline_equity_at_common_end": str(pipeline[common - 1].day.equity) if common else None,
    }


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _report(figures: dict[str, Any]) -> None:
    mix = ", ".join(f"{name} {weight}" for name, weight in figures["strategies"].items())
    print(
        f"backtest ({mix}; cash {figures['cash']}, {figures['slippage_bps']} bps slippage, "
        f"dataset loaded in {figures['dataset_load_s']:.2f} s)"
    )
    for mode, target, needed in (
        ("inprocess", TARGET_INPROCESS_SESSIONS_PER_S, TARGET_INPROCESS_SESSIONS),
        ("pipeline", TARGET_PIPELINE_SESSIONS_PER_S, TARGET_PIPELINE_SESSIONS),
    ):
        run = figures[mode]
        rate, session = run["sessions_per_s"], run["session_ms"]
        print(
            f"  {mode:<9}: {run['sessions']} sessions {run['from']}..{run['to']}: "
            f"{rate} sessions/s over the {run['measured_sessions']} after the first "
            f"({run['measured_s']} s; per session p50 {session['p50']} ms, p99 {session['p99']} ms)"
        )
        print(
            f"    start-up {run['startup_s']} s (open {run['open_s']} s, first session "
            f"{run['first_session_s']} s), stop {run['stop_s']} s; {run['trades']} trades, "
            f"{run['failed_sessions']} failed sessions, final equity {run['final_equity']}"
        )
        short = run["sessions"] < needed
        note = f" (smoke run: {run['sessions']} < {needed} sessions)" if short else ""
        met = not short and rate is not None and rate >= target
        print(f"    target >= {target:g} sessions/s: {_verdict(met)}{note}")
    agreement = figures["agreement"]
    print(
        f"  modes agree (sessions and closing equity over the first "
        f"{agreement['compared_sessions']} sessions): {'yes' if figures['modes_agree'] else 'NO'}"
        + (
            f" (first difference {agreement['first_difference']})"
            if agreement["first_difference"]
            else ""
        )
    )


def main() -> dict[str, Any]:
    """Run both modes, print their figures with the targets and return them."""
    loading = time.perf_counter()
    dataset = DatasetMarketData(Path(DEMO_DATASET_DIR))
    dataset.trading_days()
    dataset_load_s = time.perf_counter() - loading
    inprocess_backtest, inprocess_records, inprocess = _run(
        Mode.INPROCESS, _sessions(dataset, INPROCESS_SESSIONS), dataset
    )
    _, pipeline_records, pipeline = _run(
        Mode.PIPELINE, _sessions(dataset, PIPELINE_SESSIONS), dataset
    )
    agree, agreement = _agreement(inprocess_records, pipeline_records)
    config = inprocess_backtest.config
    figures: dict[str, Any] = {
        "strategies": {
            f"{stem}{STRATEGY_FILE_SUFFIX}": weight for stem, weight in config.weights.items()
        },
        "cash": str(CASH),
        "benchmark": BENCHMARK,
        "slippage_bps": str(SLIPPAGE_BPS),
        "dataset_load_s": round(dataset_load_s, 3),
        "inprocess": inprocess,
        "pipeline": pipeline,
        "modes_agree": agree,
        "agreement": agreement,
        "target_inprocess_sessions_per_s": TARGET_INPROCESS_SESSIONS_PER_S,
        "target_pipeline_sessions_per_s": TARGET_PIPELINE_SESSIONS_PER_S,
        "target_inprocess_sessions": TARGET_INPROCESS_SESSIONS,
        "target_pipeline_sessions": TARGET_PIPELINE_SESSIONS,
    }
    _report(figures)
    return figures


if __name__ == "__main__":
    main()
