"""The whole system on one machine, as separate processes: what ``make run`` and ``make dev`` start.

:class:`Stack` starts, under one run directory (default ``var/run/``):

* the embedded broker (``python -m alchemiser_devtools.embedded``, tansu in memory),
* the schema registry (``python -m alchemiser_registry serve``),
* the paper exchange over SQLite and the bundled dataset (``python -m alchemiser_exchange
  serve``, $100,000 per new account), unless the broker is Alpaca,
* the three services (``python -m alchemiser_strategy|portfolio|execution``), each with its own
  SQLite database and metrics port, logging in the console format,

on free ports of 127.0.0.1; creates the topics (one partition each) and registers the schemas.
Every process writes its log to ``<run dir>/<name>.log`` (this process's own Kafka and HTTP
clients to ``dev.log``). The stack is described in ``<run dir>/stack.json`` (processes, ports,
the account) and ``<run dir>/stack.env`` (the ``ALCHEMISER_*`` variables pointing at it, so
``set -a; . var/run/stack.env; set +a`` makes the ``alchemiser`` commands use it), so another
process (``alchemiser dev down``, ``status``) finds it. A new stack starts from empty state:
the databases and logs of a previous stack in the same directory are removed first.

:func:`follow_workflow` publishes a trigger and collects the workflow's events from the topics;
:func:`read_account` reads the account from the exchange (or Alpaca). Failures a user can cause
or fix are :class:`StackError`: one line, naming the log to read.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx

from alchemiser_common.events import (
    Event,
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.local import free_port, is_listening

__all__ = [
    "ALPACA_KEY_VARS",
    "DATASET_DIR",
    "ENV_FILE",
    "RUN_DIR",
    "SERVICES",
    "STATE_FILE",
    "TRADING_SERVICES",
    "WORKFLOW_FILE",
    "AccountSnapshot",
    "BrokerKind",
    "ProcessStatus",
    "Progress",
    "Seen",
    "Stack",
    "StackError",
    "StackProcess",
    "StackState",
    "WorkflowRun",
    "follow_workflow",
    "pick_session",
    "process_status",
    "read_account",
    "read_state",
    "stop_recorded",
    "trading_days",
]

RUN_DIR = Path("var") / "run"
"""Default run directory, relative to the working directory (``/var/`` is gitignored)."""
STATE_FILE = "stack.json"
ENV_FILE = "stack.env"
DEV_LOG = "dev.log"
TRADING_SERVICES = ("strategy", "portfolio", "execution")
"""The services a workflow passes through (a backtest starts only these)."""
SERVICES = (*TRADING_SERVICES, "ledger")
"""Every service the stack starts by default: the trading services and the ledger."""


def _repo_root() -> Path:
    """The checkout this package is installed from (editable workspace install)."""
    return Path(__file__).resolve().parents[4]


DATASET_DIR = _repo_root() / "services" / "strategy" / "data" / "demo"
"""The bundled demo dataset (strategy prices and the paper exchange's bars)."""

STARTING_CASH = "100000"
ALPACA_KEY_VARS = ("ALCHEMISER_ALPACA__API_KEY", "ALCHEMISER_ALPACA__SECRET_KEY")
_ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"
_LOCAL_KEY_ID = "alchemiser-local"  # alchemiser_broker.settings.LOCAL_EXCHANGE_KEY_ID

# Start-up: imports take 1-6 s per process on a loaded 2-CPU machine; generous but bounded.
START_TIMEOUT_S = 90.0
WORKFLOW_TIMEOUT_S = 120.0
# Stop: services get SIGTERM and finish the input at hand (their own bound is set to
# _SERVICE_SHUTDOWN_S); everything is killed after these bounds.
_SERVICE_SHUTDOWN_S = 8
_STOP_BOUNDS_S = {0: 12.0, 1: 8.0, 2: 8.0, 3: 3.0}
_POLL_S = 0.1
_HTTP_TIMEOUT_S = 2.0
_KAFKA_TIMEOUT_S = 10.0
_ACCOUNT_TIMEOUT_S = 15.0
_STATE_VERSION = 1
# Files of a previous stack in a run directory (only these are removed, never anything else).
WORKFLOW_FILE = "workflow.json"
_OWNED_GLOBS = (
    "*.log",
    "*.db",
    "*.db-journal",
    "*.db-wal",
    "*.db-shm",
    STATE_FILE,
    ENV_FILE,
    WORKFLOW_FILE,
)
_OWNED_DIRS = ("registry",)

_LABELS = {
    "broker": "embedded broker",
    "registry": "schema registry",
    "exchange": "paper exchange",
    **{name: f"{name} service" for name in SERVICES},
}
_READY_BROKER = re.compile(r"embedded broker ready on (\S+) \(pid (\d+)\)")
_log = logging.getLogger("alchemiser.dev")


class StackError(Exception):
    """Something the user can fix: one line, saying what to do and which log to read."""


class BrokerKind(StrEnum):
    """Where portfolio and execution trade."""

    EXCHANGE = "exchange"
    ALPACA = "alpaca"


class Progress(Protocol):
    """What the stack reports while it starts and stops (the CLI shows it with Rich)."""

    def begin(self, what: str) -> None:
        """A step started (``what`` is shown while it runs)."""

    def done(self, name: str, detail: str) -> None:
        """``name`` is ready or finished: ``detail`` (address, time taken)."""


class _Quiet:
    def begin(self, what: str) -> None:
        pass

    def done(self, name: str, detail: str) -> None:
        pass


# -- processes ------------------------------------------------------------------------------


def _proc_info(pid: int) -> tuple[str, str] | None:
    """(state letter, command line) of ``pid``; ``None`` when there is no such process."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        return stat.rsplit(")", 1)[-1].split()[0], cmdline
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "stat=", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    state, _, args = out.partition(" ")
    return state[:1], args.strip()


@dataclass
class StackProcess:
    """One process of the stack: what it is, where it logs, how to stop it.

    ``marker`` holds pieces of its command line: a recorded pid is only signalled while the
    process with that pid still shows all of them (a pid reused by another program is left
    alone).
    ``stage`` orders the stop: services (0), exchange and registry (1), broker (2), tansu (3).
    """

    name: str
    pid: int
    log: Path
    marker: tuple[str, ...]
    stage: int
    port: int | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        """Whether the process still runs (and is still ours)."""
        if self.popen is not None:
            return self.popen.poll() is None
        info = _proc_info(self.pid)
        return (
            info is not None and info[0] != "Z" and all(piece in info[1] for piece in self.marker)
        )

    def exit_code(self) -> int | None:
        """The exit status of a child that ended (``None`` while running or not our child)."""
        return None if self.popen is None else self.popen.poll()

    def signal(self, signum: int) -> None:
        """Send ``signum`` if the process is alive and ours."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.popen is not None:
                self.popen.send_signal(signum)
            else:
                os.kill(self.pid, signum)

    def to_json(self) -> dict[str, Any]:
        """The ``stack.json`` entry."""
        return {
            "name": self.name,
            "pid": self.pid,
            "log": str(self.log),
            "marker": list(self.marker),
            "stage": self.stage,
            "port": self.port,
            "stop_signal": int(self.stop_signal),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackProcess:
        """An entry of ``stack.json`` (not our child: signalled by pid)."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            log=Path(data["log"]),
            marker=tuple(str(piece) for piece in data["marker"]),
            stage=int(data["stage"]),
            port=None if data.get("port") is None else int(data["port"]),
            stop_signal=int(data.get("stop_signal", signal.SIGTERM)),
        )


def _stop_processes(
    processes: Iterable[StackProcess],
    progress: Progress,
    hurry: threading.Event | None = None,
) -> None:
    """Stop by stage: the signal, then SIGKILL after the stage's bound (or at once on ``hurry``)."""
    by_stage: dict[int, list[StackProcess]] = {}
    for process in processes:
        by_stage.setdefault(process.stage, []).append(process)
    for stage in sorted(by_stage):
        group = [p for p in by_stage[stage] if p.alive()]
        if not group:
            continue
        progress.begin("stopping " + ", ".join(p.name for p in group))
        for process in group:
            process.signal(process.stop_signal)
        deadline = time.monotonic() + _STOP_BOUNDS_S.get(stage, 5.0)
        while any(p.alive() for p in group) and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                break
            time.sleep(0.05)
        for process in group:
            if process.alive():
                _log.warning(
                    "%s (pid %d) did not stop in time; killing it", process.name, process.pid
                )
                process.signal(signal.SIGKILL)
            if process.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(5)
        for process in group:
            progress.done(process.name, "stopped")


# -- the state files ------------------------------------------------------------------------


@dataclass
class StackState:
    """What ``stack.json`` records: enough to find, use and stop a running stack."""

    run_dir: Path
    broker: BrokerKind
    owner_pid: int
    kept: bool
    started_at: str
    dataset_dir: Path
    bootstrap_servers: str | None = None
    registry_url: str | None = None
    exchange_url: str | None = None
    account: str | None = None
    processes: list[StackProcess] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The document written to ``stack.json``."""
        return {
            "version": _STATE_VERSION,
            "run_dir": str(self.run_dir),
            "broker": self.broker.value,
            "owner_pid": self.owner_pid,
            "kept": self.kept,
            "started_at": self.started_at,
            "dataset_dir": str(self.dataset_dir),
            "bootstrap_servers": self.bootstrap_servers,
            "registry_url": self.registry_url,
            "exchange_url": self.exchange_url,
            "account": self.account,
            "processes": [p.to_json() for p in self.processes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackState:
        """Parse ``stack.json``."""
        return cls(
            run_dir=Path(data["run_dir"]),
            broker=BrokerKind(data["broker"]),
            owner_pid=int(data["owner_pid"]),
            kept=bool(data["kept"]),
            started_at=str(data["started_at"]),
            dataset_dir=Path(data["dataset_dir"]),
            bootstrap_servers=data.get("bootstrap_servers"),
            registry_url=data.get("registry_url"),
            exchange_url=data.get("exchange_url"),
            account=data.get("account"),
            processes=[StackProcess.from_json(p) for p in data.get("processes", [])],
        )

    def alive(self) -> list[StackProcess]:
        """The recorded processes still running."""
        return [p for p in self.processes if p.alive()]


def read_state(run_dir: Path) -> StackState | None:
    """The stack recorded in ``run_dir``, or ``None``."""
    path = run_dir / STATE_FILE
    try:
        return StackState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise StackError(
            f"{path} is unreadable ({err}); remove it and stop stray processes"
        ) from None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _forget(run_dir: Path) -> None:
    for name in (STATE_FILE, ENV_FILE):
        (run_dir / name).unlink(missing_ok=True)


def stop_recorded(run_dir: Path, progress: Progress | None = None) -> StackState | None:
    """Stop the stack recorded in ``run_dir`` (``alchemiser dev down``); ``None`` if there is none.

    Only processes that still show their recorded command line are signalled.
    """
    state = read_state(run_dir)
    if state is None:
        return None
    _stop_processes(state.processes, progress or _Quiet())
    _forget(run_dir)
    return state


@dataclass(frozen=True)
class ProcessStatus:
    """One process of a recorded stack, as ``alchemiser dev status`` shows it."""

    process: StackProcess
    running: bool
    ready: bool | None  # None: no probe for this process


def _probe_url(process: StackProcess) -> str | None:
    if process.port is None:
        return None
    if process.name in SERVICES:
        return f"http://127.0.0.1:{process.port}/readyz"
    if process.name == "exchange":
        return f"http://127.0.0.1:{process.port}/healthz"
    if process.name == "registry":
        return f"http://127.0.0.1:{process.port}/"
    return None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=_HTTP_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def _ready_probe(process: StackProcess) -> Callable[[], bool]:
    """Whether a service's ``/readyz`` answers 200."""
    url = f"http://127.0.0.1:{process.port}/readyz"
    return lambda: _answers(url)


def process_status(state: StackState) -> list[ProcessStatus]:
    """Whether each recorded process runs and answers its probe (the broker: its port)."""
    statuses = []
    for process in state.processes:
        running = process.alive()
        url = _probe_url(process)
        if not running:
            ready: bool | None = False
        elif url is not None:
            ready = _answers(url)
        elif process.name == "broker" and process.port is not None:
            ready = is_listening("127.0.0.1", process.port)
        else:
            ready = None
        statuses.append(ProcessStatus(process, running, ready))
    return statuses


# -- the dataset ----------------------------------------------------------------------------


def trading_days(dataset_dir: Path) -> tuple[date, ...]:
    """Every date with a bar in the dataset (fast path: the ``date`` column of CSV files)."""
    if not dataset_dir.is_dir():
        raise StackError(f"the dataset directory {dataset_dir} does not exist")
    files = [p for p in dataset_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    csvs = [p for p in files if p.suffix == ".csv"]
    if csvs and all(p.suffix in (".csv", ".json", ".md") for p in files):
        days: set[str] = set()
        for path in csvs:
            with path.open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, [])
                if "date" not in header:
                    continue
                column = header.index("date")
                days.update(row[column] for row in reader if len(row) > column)
        return tuple(sorted(date.fromisoformat(day) for day in days))
    from alchemiser_marketdata import DatasetMarketData, InvalidDatasetError

    try:
        return DatasetMarketData(dataset_dir).trading_days()
    except InvalidDatasetError as err:
        raise StackError(f"the dataset {dataset_dir} is unreadable: {err}") from None


def pick_session(requested: date | None, dataset_dir: Path) -> date:
    """``requested`` if the dataset has bars that day, else :class:`StackError`; default the
    dataset's last trading day."""
    days = trading_days(dataset_dir)
    if not days:
        raise StackError(f"the dataset {dataset_dir} has no bars")
    if requested is None:
        return days[-1]
    if requested in days:
        return requested
    first, last = days[0], days[-1]
    if not first <= requested <= last:
        raise StackError(
            f"{requested} is outside the dataset ({first} to {last}); "
            f"pick a date in that range (DATE=YYYY-MM-DD / --date)"
        )
    before = max(d for d in days if d < requested)
    after = min(d for d in days if d > requested)
    raise StackError(
        f"{requested} is not a trading day of the dataset (no bars: weekend or holiday); "
        f"try {before} or {after}"
    )


# -- the stack ------------------------------------------------------------------------------


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    meaningful = [line for line in lines if line]
    return meaningful[-1][:300] if meaningful else ""


def _rel(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Stack:
    """Start (:meth:`start`) and stop (:meth:`stop`) the whole system under ``run_dir``.

    ``environ`` is the environment the processes inherit, less every ``ALCHEMISER_*`` variable
    (the stack sets its own; with ``BrokerKind.ALPACA`` the ``ALCHEMISER_ALPACA__*`` keys are
    passed to portfolio and execution, and missing keys are a :class:`StackError` here).
    """

    def __init__(
        self,
        run_dir: Path = RUN_DIR,
        broker: BrokerKind = BrokerKind.EXCHANGE,
        *,
        dataset_dir: Path = DATASET_DIR,
        environ: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        kafka_address: str | None = None,
        registry_address: str | None = None,
        services: Sequence[str] = SERVICES,
        service_suffix: str | None = None,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.services = tuple(services)
        """The services started (a subset of :data:`SERVICES`, in that order)."""
        self.service_suffix = service_suffix
        """Set: each service runs as ``<name>-<suffix>`` (``ALCHEMISER_SERVICE_NAME``), so its
        consumer group, transactional id and inbox are this stack's own on a shared cluster,
        and its group starts at the topics' ends (committed before the services start)."""
        self.extra_env = {name: dict(values) for name, values in (extra_env or {}).items()}
        """``ALCHEMISER_*`` settings per process name (``exchange``, ``strategy``, ...) on top
        of the stack's own (a backtest's strategies, the exchange's cost model)."""
        self.kafka_address = kafka_address
        """A Kafka cluster to use instead of starting the embedded broker."""
        self.registry_address = registry_address
        """A schema registry to use instead of starting one."""
        self.broker = broker
        self.dataset_dir = dataset_dir.resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.progress: Progress = progress or _Quiet()
        self.hurry = threading.Event()  # set: stop without waiting for graceful exits
        self.state = StackState(
            run_dir=self.run_dir,
            broker=broker,
            owner_pid=os.getpid(),
            kept=False,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dataset_dir=self.dataset_dir,
        )
        self._ports: set[int] = set()
        self._log_handler: logging.Handler | None = None
        self._started = False
        self._t0 = time.monotonic()
        self._alpaca = self._alpaca_environment() if broker is BrokerKind.ALPACA else {}

    # -- properties ------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        """The broker's ``host:port``."""
        assert self.state.bootstrap_servers is not None, "the stack is not started"
        return self.state.bootstrap_servers

    @property
    def registry_url(self) -> str:
        """The schema registry's URL."""
        assert self.state.registry_url is not None, "the stack is not started"
        return self.state.registry_url

    @property
    def account(self) -> str:
        """The account number the services trade (the triggers' account)."""
        assert self.state.account is not None, "the stack is not started"
        return self.state.account

    @property
    def kafka(self) -> KafkaSettings:
        """Client settings for the stack's broker."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers, fetch_wait_max_ms=10)

    def log_path(self, name: str) -> Path:
        """The log file of process ``name`` (``dev.log``: this process's own clients)."""
        return self.run_dir / (DEV_LOG if name == "dev" else f"{name}.log")

    # -- start -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start every process, create the topics, register the schemas, wait until ready.

        Raises :class:`StackError` on a failure the user can act on; whatever happens, the
        caller calls :meth:`stop` (or :meth:`keep`). The state files describe the stack from
        its first process on.
        """
        self._t0 = time.monotonic()
        self._prepare_run_dir()
        self._started = True
        alpaca = self._alpaca
        if alpaca:
            self.progress.begin("reading the Alpaca account")
            snapshot = read_account(self.state, alpaca_env=alpaca, positions=False)
            self.state.account = str(snapshot.account.get("account_number") or "")
            if not self.state.account:
                raise StackError("Alpaca's GET /v2/account returned no account_number")
            self.progress.done("alpaca", f"account {self.state.account}")
        exchange_port = self._port() if self.broker is BrokerKind.EXCHANGE else None
        # Everything that can start at once does: the imports of six Python processes are
        # most of the start-up. Services start once the topics exist (they subscribe at
        # once) and retry the exchange and the registry until those answer. A given broker
        # or registry is used as it is (topics created if missing, schemas registered).
        registry = None
        if self.registry_address is None:
            registry_port = self._port()
            self.state.registry_url = f"http://127.0.0.1:{registry_port}"
        else:
            self.state.registry_url = self.registry_address.rstrip("/")
        if exchange_port is not None:
            self.state.exchange_url = f"http://127.0.0.1:{exchange_port}"
        broker = self._spawn_broker(self._port()) if self.kafka_address is None else None
        if self.registry_address is None:
            registry = self._spawn_registry(registry_port)
        exchange = self._spawn_exchange(exchange_port) if exchange_port is not None else None
        if broker is not None:
            self._await_broker(broker)
        else:
            assert self.kafka_address is not None
            self.state.bootstrap_servers = self.kafka_address
            self._save()
        self._create_topics()
        if self.service_suffix is not None:
            self._start_groups_at_the_end()
        services = [self._spawn_service(name, self._port(), alpaca) for name in self.services]
        if registry is not None:
            self._await_http(registry, f"{self.registry_url}/", "schema registry")
        self._register_schemas()
        if exchange is not None:
            self._await_http(exchange, f"{self.state.exchange_url}/healthz", "paper exchange")
            self.state.account = self._open_local_account()
        self._save()
        self._await_services(services)
        self._write_env()

    def _prepare_run_dir(self) -> None:
        previous = read_state(self.run_dir) if self.run_dir.is_dir() else None
        if previous is not None and previous.alive():
            raise StackError(
                f"a stack is already running in {_rel(self.run_dir)} (started "
                f"{previous.started_at}); stop it with `alchemiser dev down"
                f"{self._run_dir_option()}` (make dev-down) or pick another --run-dir"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for pattern in _OWNED_GLOBS:
            for path in self.run_dir.glob(pattern):
                path.unlink(missing_ok=True)
        for name in _OWNED_DIRS:
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
        self._log_handler = logging.FileHandler(self.log_path("dev"))
        self._log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        root.setLevel(logging.INFO)

    def _run_dir_option(self) -> str:
        return "" if self.run_dir == RUN_DIR.resolve() else f" --run-dir {_rel(self.run_dir)}"

    def _alpaca_environment(self) -> dict[str, str]:
        keys = {k: v for k, v in self.environ.items() if k.startswith("ALCHEMISER_ALPACA__")}
        missing = [name for name in ALPACA_KEY_VARS if not keys.get(name)]
        if missing:
            raise StackError(
                f"--broker alpaca needs Alpaca paper keys: set {' and '.join(missing)} "
                "in the environment"
            )
        if keys.get("ALCHEMISER_ALPACA__PAPER", "true").strip().lower() in ("false", "0", "no"):
            raise StackError(
                "alchemiser dev trades paper accounts only: unset ALCHEMISER_ALPACA__PAPER"
            )
        return keys

    def _port(self) -> int:
        for _ in range(100):
            port = free_port()
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise StackError("no free TCP port on 127.0.0.1")  # pragma: no cover

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if not k.startswith("ALCHEMISER_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        stage: int,
        port: int | None,
        marker: tuple[str, ...],
        stop_signal: int = signal.SIGTERM,
    ) -> StackProcess:
        log = self.log_path(name)
        with log.open("ab") as handle:
            try:
                # Own session: a Ctrl-C in the terminal reaches only this process, which then
                # stops the stack in order (services first, the broker last).
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env=dict(env),
                    cwd=self.run_dir,
                    start_new_session=True,
                )
            except OSError as err:
                raise StackError(f"cannot start {name} ({argv[0]}: {err})") from None
        process = StackProcess(
            name=name,
            pid=popen.pid,
            log=log,
            marker=marker,
            stage=stage,
            port=port,
            stop_signal=stop_signal,
            popen=popen,
        )
        self.state.processes.append(process)
        self._save()
        _log.info("started %s (pid %d): %s", name, popen.pid, shlex.join(argv))
        return process

    def _spawn_broker(self, port: int) -> StackProcess:
        self.progress.begin("starting the broker, the registry and the exchange")
        argv = [
            sys.executable,
            "-m",
            "alchemiser_devtools.embedded",
            "--port",
            str(port),
            "--log-dir",
            str(self.run_dir),
        ]
        return self._spawn(
            "broker",
            argv,
            env=self._base_env(),
            stage=2,
            port=port,
            marker=("-m alchemiser_devtools.embedded", f"--port {port}"),
        )

    def _spawn_registry(self, port: int) -> StackProcess:
        data_dir = self.run_dir / "registry"
        argv = [
            sys.executable,
            "-m",
            "alchemiser_registry",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ]
        return self._spawn(
            "registry",
            argv,
            env=self._base_env(),
            stage=1,
            port=port,
            marker=("-m alchemiser_registry serve", f"--port {port}"),
        )

    def _spawn_exchange(self, port: int) -> StackProcess:
        argv = [
            sys.executable,
            "-m",
            "alchemiser_exchange",
            "serve",
            "--dataset-dir",
            str(self.dataset_dir),
            "--database-url",
            _sqlite(self.run_dir / "exchange.db"),
            "--starting-cash",
            STARTING_CASH,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return self._spawn(
            "exchange",
            argv,
            env={**self._base_env(), **self.extra_env.get("exchange", {})},
            stage=1,
            port=port,
            marker=("-m alchemiser_exchange serve", f"--port {port}"),
        )

    def _service_env(
        self, name: str, metrics_port: int, alpaca: Mapping[str, str]
    ) -> dict[str, str]:
        env = self._base_env()
        if self.service_suffix is not None:
            env["ALCHEMISER_SERVICE_NAME"] = self.service_name(name)
        env.update(
            {
                "ALCHEMISER_INSTANCE_ID": "0",
                "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS": "10",
                "ALCHEMISER_REGISTRY__URL": self.registry_url,
                "ALCHEMISER_DATABASE__URL": _sqlite(self.run_dir / f"{name}.db"),
                "ALCHEMISER_OBSERVABILITY__METRICS_PORT": str(metrics_port),
                "ALCHEMISER_OBSERVABILITY__LOG_FORMAT": "console",
                "ALCHEMISER_RUNTIME__POLL_TIMEOUT_MS": "100",
                "ALCHEMISER_RUNTIME__BACKOFF_MAX_MS": "1000",
                "ALCHEMISER_RUNTIME__SHUTDOWN_TIMEOUT_S": str(_SERVICE_SHUTDOWN_S),
            }
        )
        if name == "strategy":
            env["ALCHEMISER_STRATEGY__DATASET_DIR"] = str(self.dataset_dir)
        else:
            env["ALCHEMISER_BROKER__KIND"] = self.broker.value
            if self.broker is BrokerKind.EXCHANGE:
                assert self.state.exchange_url is not None
                env["ALCHEMISER_BROKER__EXCHANGE_URL"] = self.state.exchange_url
            else:
                env.update(alpaca)
        if name == "ledger":
            # The user's notification and ledger settings (SMTP server, webhook) reach it.
            env.update(
                {
                    key: value
                    for key, value in self.environ.items()
                    if key.startswith(("ALCHEMISER_NOTIFY__", "ALCHEMISER_LEDGER__"))
                    and key != "ALCHEMISER_LEDGER__DATABASE_URL"  # a previous stack's
                }
            )
        env.update(self.extra_env.get(name, {}))
        return env

    def _spawn_service(
        self, name: str, metrics_port: int, alpaca: Mapping[str, str]
    ) -> StackProcess:
        if name == self.services[0]:
            self.progress.begin("starting " + ", ".join(self.services))
        module = f"alchemiser_{name}"
        return self._spawn(
            name,
            [sys.executable, "-m", module],
            env=self._service_env(name, metrics_port, alpaca),
            stage=0,
            port=metrics_port,
            marker=(f"-m {module}",),
        )

    # -- readiness -------------------------------------------------------------------------
    def _died(self, process: StackProcess, when: str = "during start-up") -> StackError:
        code = process.exit_code()
        if code is not None and code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        last = _last_line(process.log)
        detail = f": {last}" if last else ""
        return StackError(
            f"the {_LABELS.get(process.name, process.name)} {how} {when}{detail} "
            f"(log: {_rel(process.log)})"
        )

    def _timed_out(self, process: StackProcess, what: str) -> StackError:
        return StackError(
            f"the {what} was not ready within {START_TIMEOUT_S:.0f} s (log: {_rel(process.log)})"
        )

    def _await(self, waiting: Mapping[str, tuple[StackProcess, Callable[[], bool]]]) -> None:
        """Wait until each named process's check passes; report each; raise if one dies."""
        pending = dict(waiting)
        deadline = time.monotonic() + START_TIMEOUT_S
        while pending:
            for started in self.state.processes:
                if started.popen is not None and not started.alive():
                    raise self._died(started)
            for what, (process, ready) in list(pending.items()):
                if ready():
                    del pending[what]
                    port = f"127.0.0.1:{process.port}  " if process.port else ""
                    elapsed = time.monotonic() - self._t0
                    self.progress.done(process.name, f"{port}ready at {elapsed:.1f} s")
            if pending and time.monotonic() > deadline:
                what, (process, _) = next(iter(pending.items()))
                raise self._timed_out(process, what)
            if pending:
                time.sleep(_POLL_S)

    def _await_broker(self, broker: StackProcess) -> None:
        found: dict[str, str] = {}

        def ready() -> bool:
            match = _READY_BROKER.search(broker.log.read_text(errors="replace"))
            if match:
                found["address"], found["pid"] = match.group(1), match.group(2)
            return match is not None

        self._await({"embedded broker": (broker, ready)})
        assert broker.port is not None
        self.state.bootstrap_servers = found["address"]
        # tansu runs in its own session under the wrapper: recorded so that a stack whose
        # wrapper was killed still has its broker stopped by `dev down`.
        self.state.processes.append(
            StackProcess(
                name="tansu",
                pid=int(found["pid"]),
                log=self.run_dir / f"tansu-{broker.port}.log",
                marker=(f"tcp://127.0.0.1:{broker.port}",),
                stage=3,
                port=broker.port,
                stop_signal=signal.SIGINT,
            )
        )
        self._save()

    def _await_http(self, process: StackProcess, url: str, what: str) -> None:
        self.progress.begin(f"waiting for the {what}")
        self._await({what: (process, lambda: _answers(url))})

    def _await_services(self, services: list[StackProcess]) -> None:
        self.progress.begin("waiting for " + ", ".join(p.name for p in services))
        self._await({f"{p.name} service": (p, _ready_probe(p)) for p in services})

    def _create_topics(self) -> None:
        from alchemiser_common.kafka.exceptions import BrokerUnreachableError, TopicCreationError
        from alchemiser_common.topics import ALL_TOPICS, create_topics

        self.progress.begin("creating the topics")
        started = time.monotonic()
        try:
            create_topics(self.kafka, partitions=1, replication_factor=1)
        except (BrokerUnreachableError, TopicCreationError) as err:
            where = (
                f"at {self.kafka_address}"
                if self.kafka_address
                else f"(log: {_rel(self.log_path('broker'))})"
            )
            raise StackError(f"could not create the topics: {err} {where}") from None
        self.progress.done(
            "topics", f"{len(ALL_TOPICS)} created in {time.monotonic() - started:.1f} s"
        )

    def service_name(self, name: str) -> str:
        """Service ``name``'s ``ALCHEMISER_SERVICE_NAME`` (its consumer group) in this stack."""
        return name if self.service_suffix is None else f"{name}-{self.service_suffix}"

    def _start_groups_at_the_end(self) -> None:
        """Commit every service group's offsets at the topics' current ends: a new group
        would otherwise start at the beginning (``auto.offset.reset=earliest``) and handle
        what other runs left on a shared cluster."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        from alchemiser_common.topics import ALL_TOPICS

        self.progress.begin("starting the services' consumer groups at the topics' ends")
        for name in self.services:
            consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "group.id": self.service_name(name),
                    "enable.auto.commit": False,
                }
            )
            try:
                ends = []
                for topic in ALL_TOPICS:
                    metadata = consumer.list_topics(topic, timeout=_KAFKA_TIMEOUT_S)
                    for partition in sorted(metadata.topics[topic].partitions):
                        _, high = consumer.get_watermark_offsets(
                            TopicPartition(topic, partition), timeout=_KAFKA_TIMEOUT_S
                        )
                        ends.append(TopicPartition(topic, partition, max(high, 0)))
                consumer.commit(offsets=ends, asynchronous=False)
            except KafkaException as err:
                raise StackError(
                    f"could not start {self.service_name(name)}'s consumer group at the "
                    f"topics' ends on {self.bootstrap_servers}: {err}"
                ) from None
            finally:
                consumer.close()

    def _register_schemas(self) -> None:
        from alchemiser_common.errors import SchemaError
        from alchemiser_common.schemas import SchemaCatalog
        from alchemiser_common.schemas.register import RegistrationRefusedError, register_all

        self.progress.begin("registering the schemas")
        started = time.monotonic()
        try:
            results = register_all(self.registry_url, SchemaCatalog.discover())
        except (RegistrationRefusedError, SchemaError) as err:
            where = (
                f"at {self.registry_address}"
                if self.registry_address
                else f"(log: {_rel(self.log_path('registry'))})"
            )
            raise StackError(f"could not register the schemas: {err} {where}") from None
        self.progress.done(
            "schemas", f"{len(results)} registered in {time.monotonic() - started:.1f} s"
        )

    def _open_local_account(self) -> str:
        """The local identity's account (opened on this first request, with the starting cash)."""
        snapshot = read_account(self.state, positions=False)
        number = str(snapshot.account.get("account_number") or "")
        if not number:
            raise StackError(
                "the paper exchange returned no account number "
                f"(log: {_rel(self.log_path('exchange'))})"
            )
        cash = snapshot.account.get("cash")
        self.progress.done("account", f"{number}  cash ${Decimal(str(cash or 0)):,.2f}")
        return number

    # -- state files -----------------------------------------------------------------------
    def _save(self) -> None:
        _write_atomic(self.run_dir / STATE_FILE, json.dumps(self.state.to_json(), indent=2) + "\n")

    def _write_env(self) -> None:
        state = self.state
        session = f" --as-of {self.last_session()}" if state.exchange_url else ""
        lines = [
            f"# The alchemiser dev stack in {state.run_dir} (broker: {state.broker.value}), "
            f"started {state.started_at}.",
            "# Use it from a shell:  set -a; . "
            + shlex.quote(_rel(self.run_dir / ENV_FILE))
            + "; set +a",
            f"# Account: {state.account}",
            f"#   alchemiser workflow start --account {state.account}{session} --rerun --wait",
        ]
        values = {
            "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": state.bootstrap_servers,
            "ALCHEMISER_REGISTRY__URL": state.registry_url,
            "ALCHEMISER_TOPICS__PARTITIONS": "1",
            "ALCHEMISER_BROKER__KIND": state.broker.value,
            "ALCHEMISER_STRATEGY__DATASET_DIR": str(state.dataset_dir),
        }
        if state.exchange_url is not None:
            values["ALCHEMISER_BROKER__EXCHANGE_URL"] = state.exchange_url
            values["ALCHEMISER_EXCHANGE__DATASET_DIR"] = str(state.dataset_dir)
            values["ALCHEMISER_EXCHANGE__DATABASE_URL"] = _sqlite(self.run_dir / "exchange.db")
        lines += [f"{name}={shlex.quote(str(value))}" for name, value in values.items()]
        if "ledger" in self.services:
            lines += [
                "# The ledger's database (alchemiser ledger trades|pnl|report):",
                "ALCHEMISER_LEDGER__DATABASE_URL="
                + shlex.quote(_sqlite(self.run_dir / "ledger.db")),
            ]
        lines += [
            "# The execution service's database (alchemiser execution attempts):",
            "ALCHEMISER_DATABASE__URL=" + shlex.quote(_sqlite(self.run_dir / "execution.db")),
        ]
        if state.broker is BrokerKind.ALPACA:
            lines.append("# Alpaca keys are not written here: keep them in your environment.")
        _write_atomic(self.run_dir / ENV_FILE, "\n".join(lines) + "\n")

    # -- running and stopping --------------------------------------------------------------
    def last_session(self) -> date:
        """The dataset's last trading day (the default session of a workflow here)."""
        return pick_session(None, self.dataset_dir)

    @property
    def alpaca_environment(self) -> dict[str, str]:
        """The ``ALCHEMISER_ALPACA__*`` variables given to the services (empty: exchange)."""
        return dict(self._alpaca)

    def check_alive(self) -> None:
        """Raise :class:`StackError` naming the first process of the stack that has died."""
        for process in self.state.processes:
            if process.popen is not None and not process.alive():
                raise self._died(process, "while the workflow ran")

    def keep(self) -> None:
        """Leave the stack running when this process exits (``dev up``, ``run --keep``)."""
        self.state.kept = True
        self._save()

    def stop(self) -> None:
        """Stop every process this stack started (services first) and forget the stack."""
        if not self._started:
            return
        _stop_processes(self.state.processes, self.progress, self.hurry)
        _forget(self.run_dir)
        self._started = False
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


# -- the workflow ---------------------------------------------------------------------------

_FOLLOWED: tuple[type[Event], ...] = (
    SignalGenerated,
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)


@dataclass(frozen=True)
class Seen:
    """One event of the workflow and when this process received it (s after publishing)."""

    event: Event
    received_s: float


@dataclass
class WorkflowRun:
    """A workflow as followed on the topics."""

    trigger: WorkflowStarted
    events: dict[str, Seen] = field(default_factory=dict)  # by event type, first copy
    dead_letters: list[str] = field(default_factory=list)

    def get(self, kind: type[Event]) -> Any:
        """The event of ``kind`` (``None`` if not seen)."""
        seen = self.events.get(kind.__name__)
        return None if seen is None else seen.event

    @property
    def outcome(self) -> WorkflowCompleted | WorkflowFailed | None:
        """How it ended, if it did."""
        completed: WorkflowCompleted | None = self.get(WorkflowCompleted)
        failed: WorkflowFailed | None = self.get(WorkflowFailed)
        return completed or failed


def _headers(raw: Any) -> dict[str, bytes]:
    """A record's headers by name (values as bytes)."""
    headers: dict[str, bytes] = {}
    for name, value in raw or []:
        headers[str(name)] = value if isinstance(value, bytes) else str(value or "").encode()
    return headers


def follow_workflow(
    stack: Stack,
    make_trigger: Callable[[], WorkflowStarted],
    on_event: Callable[[Seen], None],
    timeout_s: float = WORKFLOW_TIMEOUT_S,
) -> WorkflowRun:
    """Publish a trigger and collect its workflow's events until it completes or fails.

    Reads every workflow topic and dead-letter topic from the beginning (assigned, no group)
    and keeps the records whose ``correlation_id`` header is the trigger's. ``make_trigger``
    is called once the reader is in place, right before publishing (a rerun trigger's
    ``occurred_at`` then starts the hop clock). A dead letter of the workflow ends the wait
    (its reason is kept); so do a dead process and the timeout (:class:`StackError`).
    """
    from alchemiser_common.errors import AlchemiserError
    from alchemiser_common.kafka.clients import KafkaConsumer, take_records
    from alchemiser_common.serde import EventSerde
    from alchemiser_common.topics import DLQ_TOPICS
    from alchemiser_common.workflow import publish

    serde = EventSerde.from_url(stack.registry_url)
    consumer = KafkaConsumer(
        stack.kafka, group_id=f"alchemiser-dev-{uuid.uuid4().hex}", logger=_log
    )
    try:
        consumer.assign_from_beginning([kind.TOPIC for kind in _FOLLOWED] + list(DLQ_TOPICS))
        trigger = make_trigger()
        run = WorkflowRun(trigger)
        wanted = str(trigger.correlation_id).encode()
        published = time.monotonic()
        try:
            publish(trigger, stack.kafka, serde)
        except AlchemiserError as err:
            raise StackError(f"{err} (log: {_rel(stack.log_path('dev'))})") from None
        deadline = published + timeout_s
        while run.outcome is None and not run.dead_letters:
            if time.monotonic() > deadline:
                raise StackError(
                    f"the workflow did not finish within {timeout_s:.0f} s; see the service "
                    f"logs in {_rel(stack.run_dir)}"
                )
            stack.check_alive()
            for record in take_records(consumer, 100, 0.2):
                if record.error() is not None:
                    continue
                headers = _headers(record.headers())
                if headers.get("correlation_id") != wanted:
                    continue
                topic = str(record.topic())
                if topic in DLQ_TOPICS:
                    reason = headers.get("dlq.reason", b"?").decode(errors="replace")
                    message = headers.get("dlq.error_message", b"").decode(errors="replace")
                    run.dead_letters.append(f"{topic}: {reason}: {message}")
                    continue
                event = serde.deserialize(topic, record.value())
                if event.event_type in run.events:
                    continue  # a redelivered copy
                seen = Seen(event, time.monotonic() - published)
                run.events[event.event_type] = seen
                on_event(seen)
    finally:
        consumer.close()
    return run


# -- the account ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountSnapshot:
    """``GET /v2/account`` and ``GET /v2/positions`` as the broker answered them."""

    account: dict[str, Any]
    positions: list[dict[str, Any]]


def read_account(
    state: StackState,
    *,
    alpaca_env: Mapping[str, str] | None = None,
    positions: bool = True,
) -> AccountSnapshot:
    """The account (and positions) on the paper exchange with the local identity, or on Alpaca
    with the keys of ``alpaca_env``."""
    if state.broker is BrokerKind.ALPACA:
        env = alpaca_env or {}
        base = env.get("ALCHEMISER_ALPACA__URL_OVERRIDE") or _ALPACA_PAPER_URL
        headers = {
            "APCA-API-KEY-ID": env.get(ALPACA_KEY_VARS[0], ""),
            "APCA-API-SECRET-KEY": env.get(ALPACA_KEY_VARS[1], ""),
        }
        where = "Alpaca"
    else:
        assert state.exchange_url is not None
        base = state.exchange_url
        headers = {"APCA-API-KEY-ID": _LOCAL_KEY_ID, "APCA-API-SECRET-KEY": _LOCAL_KEY_ID}
        where = "the paper exchange"
    try:
        with httpx.Client(
            base_url=base.rstrip("/"), headers=headers, timeout=_ACCOUNT_TIMEOUT_S
        ) as client:
            account = client.get("/v2/account")
            if account.status_code in (401, 403):
                raise StackError(
                    f"{where} refused the keys (HTTP {account.status_code}): "
                    f"check {' and '.join(ALPACA_KEY_VARS)}"
                )
            account.raise_for_status()
            held: list[dict[str, Any]] = []
            if positions:
                answer = client.get("/v2/positions")
                answer.raise_for_status()
                held = list(answer.json())
    except httpx.HTTPError as err:
        raise StackError(f"could not read the account from {where} at {base}: {err}") from None
    return AccountSnapshot(dict(account.json()), held)
