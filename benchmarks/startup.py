"""Start-up cost: the operator command's CPU and each service's time to become ready.

* **CLI**: user+system CPU seconds of ``alchemiser --help`` and ``alchemiser workflow start
  --help`` beside ``python -c "import typer, rich, pydantic"`` measured in the same run (median
  of several runs). Target: each at most 3x the baseline.
* **Services, broker first**: with the embedded broker, the registry and the topics already
  up, the wall time from spawning ``python -m alchemiser_<svc>`` to its ``/readyz`` answering
  200 (SQLite state, the bundled dataset and strategies, the paper exchange over the same
  dataset, served from this process). For information: it includes the interpreter's imports
  and the service's own loading.
* **Services, broker last**: the three services are started first and wait for a broker that
  is not there yet; then the broker starts. The wall time from the broker answering to each
  service's ``/readyz`` answering 200. Target: at most 2 s each on an idle machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from pydantic import SecretStr

from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.topics import create_topics
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.harness import Pipeline, StageProcess
from alchemiser_devtools.local import free_port
from alchemiser_devtools.registry import RegistryServerProcess
from alchemiser_exchange import ExchangeServer, ExchangeSettings, build_exchange

CLI_RUNS = 5
CLI_TARGET_RATIO = 3.0
READY_TARGET_S = 2.0
READY_LIMIT_S = 60.0  # a service that is not ready by then is reported as failed
BROKER_LATE_S = 3.0  # how long the services wait for the broker before it starts
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


def _metrics_port(process: StageProcess) -> int | None:
    """The port the service serves /readyz on, from its 'observability server started' line."""
    for line in process.log_lines():
        if line.get("message") == "observability server started" and line.get("port"):
            return int(line["port"])
    return None


def _wait_ready(process: StageProcess, since: float) -> float:
    """Seconds from ``since`` (a ``perf_counter`` value) until /readyz answers 200."""
    deadline = since + READY_LIMIT_S
    port = None
    while time.perf_counter() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log_path.read_text()[-3000:]}")
        port = port or _metrics_port(process)
        if port is not None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - since
            except httpx.HTTPError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"{process.name} not ready after {READY_LIMIT_S:.0f} s")


@contextmanager
def _paper_exchange(workdir: Path) -> Iterator[str]:
    """The paper exchange over the bundled dataset (SQLite in ``workdir``); its URL."""
    settings = ExchangeSettings(
        database_url=SecretStr(f"sqlite:///{workdir}/exchange.db"), dataset_dir=DATASET
    )
    exchange = build_exchange(settings)
    try:
        with ExchangeServer(exchange) as server:
            yield server.url
    finally:
        exchange.engine.dispose()


def _service_env(workdir: Path, exchange_url: str) -> dict[str, dict[str, str]]:
    broker_env = {
        "ALCHEMISER_BROKER__KIND": "exchange",
        "ALCHEMISER_BROKER__EXCHANGE_URL": exchange_url,
    }
    services = {
        "strategy": {"ALCHEMISER_STRATEGY__DATASET_DIR": str(DATASET)},
        "portfolio": broker_env,
        "execution": broker_env,
    }
    return {
        name: {**env, "ALCHEMISER_DATABASE__URL": f"sqlite:///{workdir}/{name}.db"}
        for name, env in services.items()
    }


def _prepare(bootstrap: str, registry_url: str) -> None:
    register_all(registry_url, SchemaCatalog.discover())
    create_topics({"bootstrap.servers": bootstrap}, partitions=1, replication_factor=1)


def ready_after_spawn() -> dict[str, float]:
    """Seconds from spawn to /readyz 200 for each service, the broker already up."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_dir=Path(tmp)) as broker,
        _paper_exchange(Path(tmp)) as exchange_url,
    ):
        workdir = Path(tmp)
        registry = RegistryServerProcess(workdir / "registry").start()
        pipeline = Pipeline(broker.bootstrap_servers, registry.url, "sqlite://", workdir)
        times = {}
        try:
            _prepare(broker.bootstrap_servers, registry.url)
            for name, env in _service_env(
                workdir, exchange_url
            ).items():  # one at a time: an idle machine
                started = time.perf_counter()
                process = pipeline.start_module(f"alchemiser_{name}", name, **env)
                times[name] = _wait_ready(process, started)
        finally:
            pipeline.stop_all()
            registry.stop()
    return times


def ready_after_broker() -> dict[str, float]:
    """Seconds from the broker answering to /readyz 200, the services started first."""
    with tempfile.TemporaryDirectory() as tmp, _paper_exchange(Path(tmp)) as exchange_url:
        workdir = Path(tmp)
        port = free_port()
        registry = RegistryServerProcess(workdir / "registry").start()
        pipeline = Pipeline(f"127.0.0.1:{port}", registry.url, "sqlite://", workdir)
        try:
            processes = {
                name: pipeline.start_module(f"alchemiser_{name}", name, **env)
                for name, env in _service_env(workdir, exchange_url).items()
            }
            _wait_for_log(processes.values(), "observability server started")
            time.sleep(BROKER_LATE_S)  # the services now wait in init_transactions
            with EmbeddedBroker(port=port, log_dir=workdir) as broker:
                answered = time.perf_counter()
                _prepare(broker.bootstrap_servers, registry.url)
                return {name: _wait_ready(p, answered) for name, p in processes.items()}
        finally:
            pipeline.stop_all()
            registry.stop()


def _wait_for_log(processes: Iterable[StageProcess], message: str) -> None:
    deadline = time.perf_counter() + READY_LIMIT_S
    for process in processes:
        while not any(line.get("message") == message for line in process.log_lines()):
            if time.perf_counter() > deadline or process.process.poll() is not None:
                raise RuntimeError(f"{process.name} never logged {message!r}")
            time.sleep(0.05)


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
    spawned = ready_after_spawn()
    print("service ready after spawn, broker already up (imports and loading included)")
    for name, seconds in spawned.items():
        print(f"  {name:40s}: {seconds:6.2f} s")
    late = ready_after_broker()
    print(f"service ready after the broker answers (target <= {READY_TARGET_S:.0f} s)")
    for name, seconds in late.items():
        verdict = "meets" if seconds <= READY_TARGET_S else "MISSES"
        print(f"  {name:40s}: {seconds:6.2f} s {verdict}")
    return {
        "cli_cpu_s": costs,
        "cli_target_ratio": CLI_TARGET_RATIO,
        "service_ready_after_spawn_s": spawned,
        "service_ready_after_broker_s": late,
        "service_ready_target_s": READY_TARGET_S,
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
