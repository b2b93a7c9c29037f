"""Start-up cost: the operator command's CPU and each service's time to become ready.

* **CLI**: user+system CPU seconds of ``alchemiser --help`` and ``alchemiser workflow start
  --help`` beside ``python -c "import typer, rich, pydantic"`` measured in the same run (median
  of several runs). Target: each at most 3x the baseline.
* **Services**: with the embedded broker, the registry and the topics already up, the wall
  time from spawning ``python -m alchemiser_<svc>`` to its ``/readyz`` answering 200 (SQLite
  state, the bundled dataset and strategies, the simulated broker). Target: at most 2 s each
  on an idle machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.topics import create_topics
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.harness import Pipeline
from alchemiser_devtools.registry import RegistryServerProcess

CLI_RUNS = 5
CLI_TARGET_RATIO = 3.0
READY_TARGET_S = 2.0
READY_LIMIT_S = 60.0  # a service that is not ready by then is reported as failed
ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "services" / "strategy" / "data" / "demo"
BIN = Path(sys.executable).parent


def _cpu_seconds(argv: list[str]) -> float:
    """User+system CPU of one child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_costs() -> dict[str, float]:
    """Median CPU seconds of the baseline and of the two help commands."""
    commands = {
        "baseline_import_typer_rich_pydantic": [
            sys.executable,
            "-c",
            "import typer, rich, pydantic",
        ],
        "alchemiser_help": [str(BIN / "alchemiser"), "--help"],
        "alchemiser_workflow_start_help": [str(BIN / "alchemiser"), "workflow", "start", "--help"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(CLI_RUNS):  # interleaved, so a busy moment hits every command alike
        for name, argv in commands.items():
            samples[name].append(_cpu_seconds(argv))
    return {name: median(values) for name, values in samples.items()}


def _ready_seconds(pipeline: Pipeline, module: str, stage: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = pipeline.start_module(module, stage, **env)
    deadline = started + READY_LIMIT_S
    port = None
    while time.perf_counter() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{module} exited:\n{process.log_path.read_text()[-3000:]}")
        if port is None:
            running = [line for line in process.log_lines() if line.get("message") == "running"]
            port = running[0]["metrics_port"] if running else None
        if port is not None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"{module} not ready after {READY_LIMIT_S:.0f} s")


def service_ready_times() -> dict[str, float]:
    """Seconds from spawn to /readyz 200 for each service (one process at a time)."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_dir=Path(tmp)) as broker:
        workdir = Path(tmp)
        registry = RegistryServerProcess(workdir / "registry").start()
        try:
            register_all(registry.url, SchemaCatalog.discover())
            create_topics(
                {"bootstrap.servers": broker.bootstrap_servers}, partitions=1, replication_factor=1
            )
            pipeline = Pipeline(
                broker.bootstrap_servers, registry.url, f"sqlite:///{workdir}/x.db", workdir
            )
            broker_env = {
                "ALCHEMISER_BROKER__KIND": "simulated",
                "ALCHEMISER_BROKER__SIMULATED__DATASET_DIR": str(DATASET),
                "ALCHEMISER_BROKER__SIMULATED__DATABASE_URL": f"sqlite:///{workdir}/broker.db",
            }
            services: dict[str, dict[str, str]] = {
                "strategy": {"ALCHEMISER_STRATEGY__DATASET_DIR": str(DATASET)},
                "portfolio": broker_env,
                "execution": broker_env,
            }
            times = {}
            try:
                for name, extra in services.items():
                    env = {**extra, "ALCHEMISER_DATABASE__URL": f"sqlite:///{workdir}/{name}.db"}
                    times[name] = _ready_seconds(pipeline, f"alchemiser_{name}", name, env)
            finally:
                pipeline.stop_all()
        finally:
            registry.stop()
    return times


def main() -> dict[str, Any]:
    """Measure, print, and return the figures for ``benchmarks/results/latest.json``."""
    costs = cli_costs()
    baseline = costs["baseline_import_typer_rich_pydantic"]
    print(f"CLI start-up CPU (median of {CLI_RUNS}, seconds)")
    for name, seconds in costs.items():
        ratio = seconds / baseline if baseline else float("inf")
        verdict = (
            ""
            if name.startswith("baseline")
            else (" meets" if ratio <= CLI_TARGET_RATIO else " MISSES")
        )
        print(f"  {name:40s}: {seconds:6.3f} ({ratio:4.1f}x){verdict}")
    ready = service_ready_times()
    print(f"service ready after spawn (target <= {READY_TARGET_S:.0f} s, broker already up)")
    for name, seconds in ready.items():
        verdict = "meets" if seconds <= READY_TARGET_S else "MISSES"
        print(f"  {name:40s}: {seconds:6.2f} s {verdict}")
    return {
        "cli_cpu_s": costs,
        "cli_target_ratio": CLI_TARGET_RATIO,
        "service_ready_s": ready,
        "service_ready_target_s": READY_TARGET_S,
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
