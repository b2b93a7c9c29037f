"""``--mode inprocess``: the services' own handlers in one process, the exchange's core beside them.

Each session's events go from handler to handler as the runtime would deliver them over
Kafka, minus Kafka: strategy's ``SignalHandler`` (the same engine, the same lookback window),
portfolio's ``SignalGeneratedHandler`` (the planner, its previous-workflow gate), execution's
``WorkflowStartedHandler`` and ``RebalancePlannedHandler`` (the executor, the order desk, the
attempt store), and portfolio's ``WorkflowEndedHandler``. Every handler's unit of work runs in
a transaction on its service's database, as the inbox runs it. The broker port is
:class:`~alchemiser_exchange.direct.ExchangeBroker`: the exchange's HTTP answers and the
Alpaca adapter's mapping without the wire, so the numbers are the ones the services see.

Given the backtest's sessions, the strategy steps of the sessions to come run in a forked
process while this one plans and executes (:mod:`.ahead`): the strategy step does not depend on
the account, so this changes when it is computed, not what.

The databases are in memory: a backtest's durable state is its checkpoint (see
:mod:`.runner`), so nothing here needs to survive the process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from alchemiser_backtest.ahead import StepsAhead
from alchemiser_backtest.runner import BACKTEST_KEY_ID, BACKTEST_SECRET, Outcome, session_trigger
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import (
    Event,
    RebalancePlanned,
    SignalGenerated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import HandlerContext, HandlerResult
from alchemiser_exchange import Exchange, TradingRules
from alchemiser_exchange.direct import ExchangeBroker
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.workflows import WorkflowLog
from alchemiser_execution.app import event_source as execution_source
from alchemiser_execution.app import execution_config
from alchemiser_execution.executor import Executor
from alchemiser_execution.handlers import RebalancePlannedHandler, WorkflowStartedHandler
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.settings import ExecutionSettings
from alchemiser_marketdata import DatasetMarketData
from alchemiser_portfolio.adapters.ledger import WorkflowLedger
from alchemiser_portfolio.app import event_source as portfolio_source
from alchemiser_portfolio.domain import WorkflowEnd
from alchemiser_portfolio.handlers import SignalGeneratedHandler, WorkflowEndedHandler
from alchemiser_portfolio.sequencing import PreviousWorkflowGate
from alchemiser_portfolio.settings import PortfolioSettings
from alchemiser_strategy.app import SignalEngine, load_strategy_files
from alchemiser_strategy.handlers import SignalHandler
from alchemiser_strategy.settings import StrategySettings

__all__ = ["InProcessWorkflow", "open_exchange"]

_MEMORY = "sqlite://"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def open_exchange(
    dataset: DatasetMarketData, trading: TradingRules, url: str = _MEMORY
) -> Exchange:
    """A migrated exchange pricing from ``dataset`` (in memory unless ``url`` says otherwise)."""
    exchange = Exchange(create_engine_from_url(url), dataset, trading)
    exchange.migrate()
    return exchange


def _describe(event: Event) -> str:
    if isinstance(event, WorkflowFailed):
        return f"failed: {event.failure_step.value}: {event.reason}"
    return "completed"


class InProcessWorkflow:
    """Runs one session's workflow through the services' handlers (see the module)."""

    def __init__(
        self,
        exchange: Exchange,
        dataset: DatasetMarketData,
        *,
        strategy_settings: dict[str, Any],
        execution_settings: dict[str, Any],
        now: Callable[[], datetime] = _utc_now,
        sessions: Sequence[date] = (),
    ) -> None:
        """``sessions``: the backtest's, in order, for the strategy steps to be computed ahead
        (none: each step is computed when its session runs)."""
        account = exchange.open_account(BACKTEST_KEY_ID, BACKTEST_SECRET)
        self.account_number = account.account_number
        broker = ExchangeBroker(exchange, self.account_number)
        self._now = now
        self._sessions = tuple(sessions)
        self._ahead: StepsAhead | None = None
        strategy = StrategySettings.model_validate({"strategy": strategy_settings})
        portfolio = PortfolioSettings.model_validate({})
        execution = ExecutionSettings.model_validate({"execution": execution_settings})
        metrics = Metrics()
        self._portfolio_db = create_engine_from_url(_MEMORY)
        self._execution_db = create_engine_from_url(_MEMORY)
        ledger = WorkflowLedger(self._portfolio_db)
        ledger.migrate()
        store = AttemptStore(self._execution_db)
        store.migrate()
        workflows = WorkflowLog(self._execution_db)
        workflows.migrate()
        section = strategy.strategy
        self._signal = SignalHandler(
            SignalEngine(
                load_strategy_files(section.strategy_files(), section.weights),
                dataset,
                lambda _now: dataset.trading_days()[-1],
            )
        )
        self._plan = SignalGeneratedHandler(
            broker,
            portfolio.portfolio.planner_config(),
            source=portfolio_source(),
            gate=PreviousWorkflowGate(
                ledger, timedelta(seconds=portfolio.portfolio.previous_workflow_wait_s)
            ),
        )
        executor = Executor(
            broker,
            store,
            OrderDesk(broker, store, broker_name="exchange", metrics=metrics),
            execution_config(execution),
            sleep=lambda _seconds: None,
        )
        self._started = WorkflowStartedHandler()
        self._execute = RebalancePlannedHandler(
            executor,
            workflows,
            source=execution_source(),
            workflow_wait_s=execution.execution.workflow_wait_s,
            metrics=metrics,
        )

    def _context(self, service: str) -> HandlerContext:
        return HandlerContext(consumer=f"backtest-{service}", now=self._now)

    @staticmethod
    def _apply(engine: Engine, result: HandlerResult) -> Sequence[Event]:
        if result.state is not None:
            with engine.begin() as connection:
                result.state(connection)
        return result.events

    def _ended(self, outcome: WorkflowCompleted | WorkflowFailed) -> None:
        end = (
            WorkflowEnd.COMPLETED if isinstance(outcome, WorkflowCompleted) else WorkflowEnd.FAILED
        )
        self._apply(
            self._portfolio_db, WorkflowEndedHandler(end)(outcome, self._context("portfolio"))
        )

    def _strategy_step(self, trigger: WorkflowStarted) -> Sequence[Event]:
        return self._signal(trigger, self._context("strategy"))

    def _signal_of(self, trigger: WorkflowStarted) -> Sequence[Event]:
        """The strategy step's events: from the worker when it computed them, else computed
        here (and a worker started on the sessions after ``trigger``'s)."""
        if self._ahead is not None:
            events = self._ahead.take(trigger)
            if events is not None:
                return events
        events = self._strategy_step(trigger)
        later = [day for day in self._sessions if trigger.as_of is not None and day > trigger.as_of]
        if later:
            self.close()
            self._ahead = StepsAhead(
                self._strategy_step,
                [session_trigger(self.account_number, day) for day in later],
            )
        return events

    def close(self) -> None:
        """Stop the strategy steps computed ahead, if any."""
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None

    def run(self, trigger: WorkflowStarted) -> Outcome:
        """The trigger through strategy, portfolio and execution; its outcome."""
        self._apply(self._execution_db, self._started(trigger, self._context("execution")))
        (first,) = self._signal_of(trigger)
        if not isinstance(first, SignalGenerated):
            assert isinstance(first, WorkflowFailed)
            self._ended(first)
            return Outcome(_describe(first), None)
        signal = first
        (planned,) = self._apply(self._portfolio_db, self._plan(signal, self._context("portfolio")))
        if not isinstance(planned, RebalancePlanned):
            assert isinstance(planned, WorkflowFailed)
            self._ended(planned)
            return Outcome(_describe(planned), signal)
        outputs = self._execute(planned, self._context("execution"))
        ending = [
            event for event in outputs if isinstance(event, WorkflowCompleted | WorkflowFailed)
        ]
        if len(ending) != 1:
            raise RuntimeError(f"execution emitted {len(ending)} outcomes for one plan")
        self._ended(ending[0])
        return Outcome(_describe(ending[0]), signal)


def strategy_section(
    strategies_dir: Path, weights: dict[str, str], dataset_dir: Path
) -> dict[str, Any]:
    """The ``strategy`` settings section both modes give the strategy engine."""
    return {
        "strategies_dir": str(strategies_dir),
        "weights": {stem: Decimal(weight) for stem, weight in weights.items()},
        "dataset_dir": str(dataset_dir),
    }
