"""``make bench``: run every benchmark, print the results and a summary table, write
``results/latest.json``.

The benchmarks run one after another, each on its own broker (nothing of one is running while
the next measures):

1. :mod:`.runtime_throughput`: the processing loop on PostgreSQL beside a bare copy loop;
2. :mod:`.strategy_evaluation`: the bundled strategies, per day and over the full history;
3. :mod:`.startup`: the CLI's start-up CPU and the services' time to ready;
4. :mod:`.workflow_latency`: workflows on the embedded stack with the paper exchange, and the
   same broker's bare round trip;
5. :mod:`.backtest`: backtest sessions per second in process and through the pipeline (its
   own embedded stack), and whether the two modes agree.

``latest.json`` holds each module's detailed section under its name and, at the top level, the
flat headline keys of :func:`benchmarks.summary.headline` (latency, hops, loop rates, backtest
rates, ratios, targets, ``meets``). The machine's load average is recorded before and after
the run: the machine has few cores and other jobs may share it, so the figures are only
comparable with that in mind.

Environment: ``BENCH_WORKFLOWS`` (default 200; fewer is a smoke run), ``BENCH_WORKFLOW_WARMUP``,
``BENCH_ROUNDTRIPS``, ``BENCH_EVENTS``, ``BENCH_STRATEGY_RUNS``, ``BENCH_BACKTEST_SESSIONS``
(pipeline sessions, default 120), ``BENCH_BACKTEST_INPROCESS_SESSIONS`` (default 253, all of
2008).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    backtest,
    runtime_throughput,
    startup,
    strategy_evaluation,
    summary,
    workflow_latency,
)

RESULTS = Path(__file__).parent / "results" / "latest.json"


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> int:
    """Run the benchmarks and record them (exit non-zero only if one fails to run)."""
    load_start = _load()
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    runtime = runtime_throughput.main()
    strategy = strategy_evaluation.main()
    starting = startup.main()
    workflow = workflow_latency.main()
    backtesting = backtest.main()
    load_end = _load()
    flat = summary.headline(runtime, strategy, starting, workflow, backtesting)
    figures: dict[str, Any] = {
        "measured_at": measured_at,
        "commit": _commit(),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_start": load_start,
            "load_average_end": load_end,
        },
        **flat,
        "runtime_throughput": runtime,
        "strategy_evaluation": strategy,
        "startup": starting,
        "workflow_latency": workflow,
        "backtest": backtesting,
    }
    summary.print_table(flat)
    print(
        f"load average (1, 5, 15 min) on {os.cpu_count()} CPUs: start {load_start}, end {load_end}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
