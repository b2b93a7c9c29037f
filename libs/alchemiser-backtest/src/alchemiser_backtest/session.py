"""One backtest from its options to its tearsheet: checks, the mode's machinery, the report.

:meth:`Backtest.prepare` checks the options against the dataset and the strategy folder (a
:class:`BacktestError` names the option to fix); :meth:`Backtest.open` starts the mode's
machinery (the stack for ``pipeline``, the handlers for ``inprocess``) and yields a
:class:`RunningBacktest`; :meth:`Backtest.write_report` writes the results and the tearsheet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from alchemiser_backtest.checkpoint import BacktestConfig, Checkpoint, CheckpointError
from alchemiser_backtest.records import SessionRecord
from alchemiser_backtest.report import write_results, write_tearsheet
from alchemiser_backtest.runner import Progress, Workflow, run_backtest
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.observability.logging import configure_logging
from alchemiser_exchange import Exchange, TradingRules
from alchemiser_marketdata import DatasetMarketData, MarketDataError
from alchemiser_strategy.exceptions import StrategyConfigError
from alchemiser_strategy.settings import (
    DEFAULT_WEIGHTS,
    STRATEGY_FILE_SUFFIX,
    default_strategies_dir,
    read_config_weights,
)

if TYPE_CHECKING:
    from alchemiser_devtools.stack import Stack

__all__ = [
    "NO_CAP",
    "Backtest",
    "BacktestError",
    "Mode",
    "RunningBacktest",
    "default_out_dir",
    "exchange_environment",
    "trading_rules",
]


EMBEDDED_STACK_SESSIONS = 600
"""``pipeline`` on the embedded broker: sessions run on one stack before a fresh one takes over
(see :meth:`Backtest.run`)."""

NO_CAP = Decimal(10) ** 12
"""The backtest's default for execution's order-value caps: none to speak of. The caps guard a
live account against a runaway plan; over a strategy's history they would refuse the sessions
in which the account has grown past them (pass ``--max-order-value`` to keep one)."""


class BacktestError(Exception):
    """An option or a state the user can fix (one line)."""


class Mode(StrEnum):
    """How each session's workflow runs."""

    PIPELINE = "pipeline"
    INPROCESS = "inprocess"


def default_out_dir(start: date, end: date) -> Path:
    """``var/backtest/<from>_<to>`` under the working directory."""
    return Path("var") / "backtest" / f"{start.isoformat()}_{end.isoformat()}"


def _dataset_dir() -> Path:
    from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR

    return Path(DEMO_DATASET_DIR)


def trading_rules(config: BacktestConfig) -> TradingRules:
    """The exchange's rules for ``config``: its cost model, no rate limit, no auto-open cash."""
    return TradingRules(
        starting_cash=config.cash,
        rate_limit_per_minute=0,
        **_costs(config),
    )


def _costs(config: BacktestConfig) -> dict[str, Decimal]:
    """The exchange's cost-model settings (``TradingRules`` fields) of ``config``."""
    return {
        "slippage_bps": config.slippage_bps,
        "commission_bps": config.commission_bps,
        "commission_per_share": config.commission_per_share,
        "commission_min": config.commission_min,
    }


def exchange_environment(config: BacktestConfig) -> dict[str, str]:
    """The exchange process's ``ALCHEMISER_EXCHANGE__*`` for ``config`` (pipeline mode)."""
    env = {
        "ALCHEMISER_EXCHANGE__RATE_LIMIT_PER_MINUTE": "0",
        "ALCHEMISER_EXCHANGE__STARTING_CASH": str(config.cash),
    }
    for name, value in _costs(config).items():
        env[f"ALCHEMISER_EXCHANGE__{name.upper()}"] = str(value)
    return env


@contextmanager
def _logging_to(stream: TextIO) -> Iterator[None]:
    """Warnings and errors of the code a backtest runs go to ``stream``; the process's logging
    is as it was afterwards (a test process, the bench, go on logging where they did)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    configure_logging("WARNING", "json", "backtest", stream=stream)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.configure(**config)


def _scratch_dir(state: Path) -> Path:
    """Where the pipeline's stack keeps its databases and logs for one run.

    In memory (``/dev/shm``) where there is one: a backtest's durable state is its checkpoint,
    so the services' and the exchange's SQLite files need not reach the disk, and their
    commits then cost no disk flush. Else ``<out>/state/stack``. Emptied first: every run
    starts the services afresh.
    """
    memory = Path("/dev/shm")  # noqa: S108 - a private folder below it, made here
    if memory.is_dir() and os.access(memory, os.W_OK):
        key = hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:16]
        run_dir = memory / f"alchemiser-backtest-{key}"
    else:
        run_dir = state / "stack"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return run_dir


def _keep_logs(run_dir: Path, logs: Path) -> None:
    """Copy the stack's logs to ``logs`` and remove a scratch folder in memory."""
    logs.mkdir(parents=True, exist_ok=True)
    for log in run_dir.glob("*.log"):
        shutil.copy2(log, logs / log.name)
    if run_dir.parent == Path("/dev/shm"):  # noqa: S108 - ours, see _scratch_dir
        shutil.rmtree(run_dir, ignore_errors=True)


def execution_section(config: BacktestConfig) -> dict[str, str]:
    """The execution settings a backtest changes: its caps."""
    return {
        "max_order_value": str(config.max_order_value),
        "max_daily_traded_value": str(config.max_daily_traded_value),
    }


def _weights(directory: Path) -> dict[str, str]:
    """The folder's ``strategies.toml`` weights; else the bundled mix if those files are
    there; else equal weights over its ``.clj`` files."""
    try:
        configured = read_config_weights(directory)
    except StrategyConfigError as err:
        raise BacktestError(str(err)) from None
    if configured is not None:
        return configured
    files = sorted(path.stem for path in directory.glob(f"*{STRATEGY_FILE_SUFFIX}"))
    if not files:
        raise BacktestError(f"--strategies {directory}: no {STRATEGY_FILE_SUFFIX} files there")
    if all(stem in files for stem in DEFAULT_WEIGHTS):
        return {stem: str(weight) for stem, weight in DEFAULT_WEIGHTS.items()}
    return {stem: "1" for stem in files}


@dataclass
class Backtest:
    """A checked backtest: its configuration, sessions, mode and results folder."""

    config: BacktestConfig
    sessions: tuple[date, ...]
    mode: Mode
    out_dir: Path
    dataset: DatasetMarketData
    kafka_address: str | None = None
    """``pipeline``: a Kafka cluster to run over instead of the embedded broker."""
    registry_address: str | None = None
    """``pipeline``: a schema registry to use instead of starting one."""
    stack_sessions: int = EMBEDDED_STACK_SESSIONS
    """``pipeline`` on the embedded broker: sessions per stack (see :meth:`run`)."""
    work_ahead: bool = True
    """``inprocess``: compute the strategy steps of the sessions to come in a second process
    where the machine has a second core (see :mod:`alchemiser_backtest.ahead`)."""

    @classmethod
    def prepare(
        cls,
        *,
        start: date,
        end: date,
        strategies_dir: Path | None,
        cash: Decimal,
        mode: Mode,
        out_dir: Path | None,
        benchmark: str,
        slippage_bps: Decimal,
        commission_bps: Decimal,
        commission_per_share: Decimal,
        commission_min: Decimal,
        dataset_dir: Path | None,
        dataset: DatasetMarketData | None = None,
        max_order_value: Decimal = NO_CAP,
        max_daily_traded_value: Decimal = NO_CAP,
    ) -> Backtest:
        """Check the options; :class:`BacktestError` names the one to fix.

        ``dataset``: the dataset of ``dataset_dir`` already loaded (tests, benchmarks).
        """
        if end < start:
            raise BacktestError(f"--to {end} is before --from {start}")
        if cash <= 0:
            raise BacktestError("--cash must be more than 0")
        directory = (strategies_dir or default_strategies_dir()).resolve()
        if not directory.is_dir():
            raise BacktestError(f"--strategies {directory} is not a folder")
        data_dir = (dataset_dir or _dataset_dir()).resolve()
        if not data_dir.is_dir():
            raise BacktestError(f"--dataset {data_dir} is not a folder")
        if dataset is None:
            dataset = DatasetMarketData(data_dir)
        try:
            days = dataset.trading_days()
        except MarketDataError as err:
            raise BacktestError(f"--dataset {data_dir}: {err}") from None
        sessions = tuple(day for day in days if start <= day <= end)
        if not sessions:
            first, last = (days[0], days[-1]) if days else (None, None)
            raise BacktestError(
                f"no session of the dataset between {start} and {end} "
                f"(it has {first} to {last}); pick dates in that range"
            )
        if dataset.history(benchmark) is None:
            raise BacktestError(f"--benchmark {benchmark} is not a symbol of the dataset")
        weights = _weights(directory)
        for stem in weights:
            if not (directory / f"{stem}{STRATEGY_FILE_SUFFIX}").is_file():
                raise BacktestError(
                    f"--strategies {directory}: strategies.toml names {stem} but "
                    f"{stem}{STRATEGY_FILE_SUFFIX} is not there"
                )
        config = BacktestConfig(
            start=sessions[0],
            end=sessions[-1],
            cash=cash,
            strategies_dir=str(directory),
            weights=weights,
            dataset_dir=str(data_dir),
            slippage_bps=slippage_bps,
            commission_per_share=commission_per_share,
            commission_bps=commission_bps,
            commission_min=commission_min,
            benchmark=benchmark,
            max_order_value=max_order_value,
            max_daily_traded_value=max_daily_traded_value,
        )
        target = (out_dir or default_out_dir(sessions[0], sessions[-1])).resolve()
        return cls(config, sessions, mode, target, dataset)

    @contextmanager
    def open(
        self, say: Callable[[str], None] = print, *, resume: bool = False
    ) -> Iterator[RunningBacktest]:
        """Check the state folder, start the mode's machinery; stop it on the way out."""
        checkpoint = Checkpoint(self.out_dir)
        try:
            checkpoint.check(self.config, resume=resume)
        except CheckpointError as err:
            raise BacktestError(str(err)) from None
        state = checkpoint.directory
        state.mkdir(parents=True, exist_ok=True)
        with (state / "backtest.log").open("a") as log, _logging_to(log):
            if self.mode is Mode.INPROCESS:
                yield from self._inprocess()
                return
            yield from self._pipeline(state, say)

    def run(
        self,
        say: Callable[[str], None] = print,
        *,
        resume: bool = False,
        progress: Progress | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> list[SessionRecord]:
        """Open, run (or resume) every session, close; the records of all sessions done.

        Through the pipeline on the embedded broker, each stack runs :attr:`stack_sessions`
        sessions and a fresh one carries on from the checkpoint, as ``--resume`` does. The
        embedded broker keeps every record and its fetches cost more the longer a partition
        is (a fetch of the newest record took ~0.3 ms of its CPU in a near-empty partition
        and ~6 ms after 3,000 records), so one stack over ten years slowed to a third of its
        starting speed by the end; a restart costs ~15 s. The results are those of one run: the
        account and the checkpoint carry over, and the workflow ids derive from the account
        and the session. The logs kept in ``<out>/state/logs`` are the last stack's.
        """
        stretch = (
            self.stack_sessions
            if self.mode is Mode.PIPELINE and self.kafka_address is None
            else None
        )
        while True:
            with self.open(say, resume=resume) as running:
                records = running.run(resume=resume, progress=progress, stop=stop, limit=stretch)
            if stretch is None or len(records) == len(self.sessions) or stop():
                return records
            resume = True

    def _strategy_section(self) -> dict[str, Any]:
        from alchemiser_backtest.inprocess import strategy_section

        return strategy_section(
            Path(self.config.strategies_dir),
            self.config.weights,
            Path(self.config.dataset_dir),
        )

    def _inprocess(self) -> Iterator[RunningBacktest]:
        from alchemiser_backtest.ahead import can_work_ahead
        from alchemiser_backtest.inprocess import InProcessWorkflow, open_exchange

        exchange = open_exchange(self.dataset, trading_rules(self.config))
        workflow = InProcessWorkflow(
            exchange,
            self.dataset,
            strategy_settings=self._strategy_section(),
            execution_settings=execution_section(self.config),
            sessions=self.sessions if self.work_ahead and can_work_ahead() else (),
        )
        try:
            yield RunningBacktest(self, exchange, workflow.account_number, workflow)
        finally:
            workflow.close()

    def _pipeline(self, state: Path, say: Callable[[str], None]) -> Iterator[RunningBacktest]:
        from alchemiser_backtest.pipeline import PipelineWorkflow, start_stack
        from alchemiser_devtools.stack import StackError

        run_dir = _scratch_dir(state)
        logs = state / "logs"
        say("starting the broker, the registry, the exchange and the three services ...")
        try:
            try:
                stack = start_stack(
                    run_dir,
                    Path(self.config.dataset_dir),
                    strategies_dir=Path(self.config.strategies_dir),
                    weights=self.config.weights,
                    exchange_env=exchange_environment(self.config),
                    execution_env={
                        f"ALCHEMISER_EXECUTION__{name.upper()}": value
                        for name, value in execution_section(self.config).items()
                    },
                    kafka_address=self.kafka_address,
                    registry_address=self.registry_address,
                )
            except StackError as err:
                raise BacktestError(f"{err} (logs kept in {logs})") from None
            try:
                exchange = Exchange(
                    create_engine_from_url(f"sqlite:///{run_dir / 'exchange.db'}"),
                    self.dataset,
                    trading_rules(self.config),
                )
                workflow = PipelineWorkflow(stack)
                try:
                    yield RunningBacktest(self, exchange, stack.account, workflow, stack)
                finally:
                    workflow.close()
            except StackError as err:
                raise BacktestError(f"{err} (logs kept in {logs})") from None
            finally:
                stack.stop()
        finally:
            _keep_logs(run_dir, logs)

    def benchmark_closes(self) -> dict[date, Decimal]:
        """The benchmark's closes over the backtest's sessions."""
        history = self.dataset.history(self.config.benchmark)
        if history is None:
            return {}
        return {
            bar.date: bar.close
            for bar in history.bars
            if self.config.start <= bar.date <= self.config.end
        }

    def write_report(self, records: Sequence[SessionRecord]) -> Path:
        """The results files and the tearsheet; the tearsheet's path."""
        write_results(self.out_dir, records)
        title = f"Backtest {self.config.start} to {self.config.end}: " + ", ".join(
            f"{stem} {weight}" for stem, weight in self.config.weights.items()
        )
        return write_tearsheet(
            self.out_dir,
            records,
            title=title,
            benchmark=self.config.benchmark,
            benchmark_closes=self.benchmark_closes(),
            costs=self.config.costs(),
        )


@dataclass
class RunningBacktest:
    """A backtest whose machinery runs: :meth:`run` its sessions."""

    backtest: Backtest
    exchange: Exchange
    account_number: str
    workflow: Workflow
    stack: Stack | None = None
    """The services' stack (``pipeline``), for tests that kill one of its processes."""

    def run(
        self,
        *,
        resume: bool,
        progress: Progress | None = None,
        stop: Callable[[], bool] = lambda: False,
        limit: int | None = None,
    ) -> list[SessionRecord]:
        """Run (or resume) every session (at most ``limit`` of them); the records of all
        sessions done."""
        try:
            return run_backtest(
                self.backtest.config,
                sessions=self.backtest.sessions,
                checkpoint=Checkpoint(self.backtest.out_dir),
                exchange=self.exchange,
                account_number=self.account_number,
                workflow=self.workflow,
                resume=resume,
                progress=progress,
                stop_requested=stop,
                limit=limit,
            )
        except CheckpointError as err:
            raise BacktestError(str(err)) from None
