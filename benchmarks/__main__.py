"""``make bench``: run every benchmark, print the results, write ``results/latest.json``."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import runtime_throughput, startup, strategy_evaluation

RESULTS = Path(__file__).parent / "results" / "latest.json"


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def main() -> int:
    """Run the benchmarks and record them (exit non-zero only if one fails to run)."""
    figures = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "runtime_throughput": runtime_throughput.main(),
        "strategy_evaluation": strategy_evaluation.main(),
        "startup": startup.main(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
