"""``make bench``: run every benchmark in turn and print the results."""

from __future__ import annotations

import importlib
import sys

from benchmarks import runtime_throughput


def main() -> int:
    """Run the benchmarks; exit non-zero if one fails to run (not if it misses a target)."""
    runtime_throughput.main()
    try:
        strategy_evaluation = importlib.import_module("benchmarks.strategy_evaluation")
    except ImportError as err:
        print(f"strategy evaluation benchmark unavailable: {err}", file=sys.stderr)
        return 1
    strategy_evaluation.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
