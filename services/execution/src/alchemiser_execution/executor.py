"""Execute one rebalance plan: plan the orders once, check the caps, sell, wait, buy.

:meth:`Executor.execute` is safe to call again for the same workflow (a redelivered input, a
retry after a transient failure, a restart after a crash): the first call records an
:class:`~alchemiser_execution.domain.runs.ExecutionRun` with the sized orders before anything
is sent, and every later call resumes that run from its recorded attempts. At most one run
exists per (account, workflow); a different plan for the same workflow is refused.

Order of work: the market clock (its session is the trading day the caps count) and the
account's number (a plan for another account is refused: ``account_mismatch``) -> assets,
prices, positions and the account -> the plan rules of
:mod:`~alchemiser_execution.domain.plan_rules` (every symbol tradable, the buys funded; a
violation raises :class:`InvalidPlanError`: nothing recorded, nothing sent) -> market open?
(closed -> refused) -> sized orders -> caps (breach -> refused, nothing sent) -> run recorded
-> the sells phase -> wait for buying power -> the buys phase -> results. A resumed run is not
checked again: its account has changed by its own orders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from alchemiser_broker import (
    ACCOUNT_MISMATCH,
    AssetInfo,
    BrokerPort,
    BrokerUnavailableError,
    OrderNotFoundError,
)
from alchemiser_broker.stream import OrderUpdates
from alchemiser_common.events import OrderSide, RebalancePlan, execution_plan_hash
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.workflow import SESSION_TIMEZONE
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import Attempt
from alchemiser_execution.domain.caps import check_caps, planned_value
from alchemiser_execution.domain.legs import Leg, client_order_id, plan_legs
from alchemiser_execution.domain.plan_rules import (
    describe,
    funding_violation,
    tradability_violations,
)
from alchemiser_execution.domain.results import ExecutionResult, LegResult, execution_result
from alchemiser_execution.domain.runs import ExecutionRun, RunStatus
from alchemiser_execution.domain.sizing import PlannedOrder, size_legs
from alchemiser_execution.exceptions import InvalidPlanError, PlanConflictError
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.phases import ExecutionConfig, PhaseRunner

__all__ = ["MARKET_CLOSED", "STALE_PLAN", "ExecutionReport", "ExecutionRequest", "Executor"]

_log = get_logger(__name__)

MARKET_CLOSED = "market_closed"
STALE_PLAN = "stale_plan"


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """What to execute: a plan of one workflow for one account."""

    account_id: str
    correlation_id: UUID
    plan_hash: str
    plan: RebalancePlan
    input_event_id: UUID
    planned_at: datetime | None = None
    """When the plan was made (from the account as it was then); ``None``: not checked."""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What happened: the run, and (unless it was refused) the results."""

    run: ExecutionRun
    result: ExecutionResult | None
    execution_plan_hash: str | None
    duration_ms: int

    @property
    def refused(self) -> bool:
        """Whether nothing was sent (market closed, a cap)."""
        return self.run.status is RunStatus.REFUSED


@dataclass(frozen=True, slots=True)
class _BrokerFacts:
    """What the broker said before sizing: fractionability, latest prices, held quantities."""

    fractionable: Mapping[str, bool]
    prices: Mapping[str, Decimal]
    positions: Mapping[str, Decimal]


class Executor:
    """Executes plans against one broker, recording runs and attempts in one store."""

    def __init__(
        self,
        broker: BrokerPort,
        store: AttemptStore,
        desk: OrderDesk,
        config: ExecutionConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        updates: OrderUpdates | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self._store = store
        self._desk = desk
        self._config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._account_number: str | None = None
        self._known_assets: dict[str, tuple[float, AssetInfo]] = {}
        self._phases = PhaseRunner(broker, desk, config, sleep=sleep, updates=updates)

    @property
    def broker(self) -> BrokerPort:
        """The broker the executor trades with."""
        return self._broker

    def has_run(self, account_id: str, correlation_id: str) -> bool:
        """Whether the workflow already has an execution run (its plan passed every check)."""
        return self._store.find_run(account_id, correlation_id) is not None

    def check_plan(self, request: ExecutionRequest) -> None:
        """Check the plan rules that need the broker (tradable symbols, funded buys), recording
        and sending nothing; raise ``InvalidPlanError``. A plan for another account, or with
        nothing to trade, has nothing to check here."""
        legs = plan_legs(request.plan.items)
        if not legs or self._account_mismatch(request.account_id) is not None:
            return
        self._checked_facts(request, legs, sorted({leg.symbol for leg in legs}))

    def execute(self, request: ExecutionRequest) -> ExecutionReport:
        """Execute (or resume) ``request``'s plan; see the module docstring."""
        correlation_id = str(request.correlation_id)
        run = self._store.find_run(request.account_id, correlation_id)
        if run is None:
            run = self._store.start_run(self._plan(request))
        if run.plan_hash != request.plan_hash:
            raise PlanConflictError(
                f"workflow {correlation_id} already executes plan {run.plan_hash[:12]}; "
                f"refusing a different plan {request.plan_hash[:12]}"
            )
        if run.status is RunStatus.REFUSED:
            _log.warning("execution refused; nothing sent", reason=run.reason, detail=run.detail)
            return ExecutionReport(run, None, None, self._elapsed_ms(run))
        legs = self._run(run)
        result = execution_result(legs)
        self._store.finish_run(run.account_id, run.correlation_id, result.total_trade_value)
        return ExecutionReport(run, result, _plan_hash_of(run), self._elapsed_ms(run))

    # -------------------------------------------------------------- planning

    def _plan(self, request: ExecutionRequest) -> ExecutionRun:
        """Size the orders and decide whether they may be sent; nothing is sent here."""
        now = self._desk.now()
        legs = plan_legs(request.plan.items)
        clock = self._broker.get_clock()
        base: dict[str, Any] = {
            "account_id": request.account_id,
            "correlation_id": str(request.correlation_id),
            "plan_hash": request.plan_hash,
            "input_event_id": str(request.input_event_id),
            # the broker's session (the paper exchange's account clock), never the wall clock
            "trading_day": clock.timestamp.astimezone(SESSION_TIMEZONE).date(),
            "started_at": now,
        }
        mismatch = self._account_mismatch(request.account_id)
        if mismatch is not None:
            return ExecutionRun(
                status=RunStatus.REFUSED,
                orders=(),
                reserved_value=Decimal(0),
                reason=ACCOUNT_MISMATCH,
                detail=mismatch,
                refused_symbols=tuple(sorted({leg.symbol for leg in legs})),
                **base,
            )
        if not legs:
            return ExecutionRun(
                status=RunStatus.RUNNING, orders=(), reserved_value=Decimal(0), **base
            )
        stale = self._stale(request)
        if stale is not None:
            return ExecutionRun(
                status=RunStatus.REFUSED,
                orders=(),
                reserved_value=Decimal(0),
                reason=STALE_PLAN,
                detail=stale,
                refused_symbols=tuple(sorted({leg.symbol for leg in legs})),
                **base,
            )
        symbols = sorted({leg.symbol for leg in legs})
        facts = self._checked_facts(request, legs, symbols)
        if not clock.is_open:
            return ExecutionRun(
                status=RunStatus.REFUSED,
                orders=(),
                reserved_value=Decimal(0),
                reason=MARKET_CLOSED,
                detail=f"the market is closed; next open {clock.next_open.isoformat()}",
                refused_symbols=tuple(sorted({leg.symbol for leg in legs})),
                **base,
            )
        orders = size_legs(
            legs,
            prices=facts.prices,
            fractionable=facts.fractionable,
            positions=facts.positions,
            client_order_id=lambda leg: client_order_id(
                request.correlation_id, request.plan_hash, leg
            ),
        )
        for order in orders:
            if order.skipped is not None:
                _log.info("leg skipped", symbol=order.symbol, reason=order.skipped)
        traded_today = self._store.traded_value_on(
            request.account_id, base["trading_day"], excluding=base["correlation_id"]
        )
        breach = check_caps(
            orders,
            max_order_value=self._config.max_order_value,
            max_daily_traded_value=self._config.max_daily_traded_value,
            traded_today=traded_today,
        )
        if breach is not None:
            return ExecutionRun(
                status=RunStatus.REFUSED,
                orders=tuple(orders),
                reserved_value=Decimal(0),
                reason=breach.reason,
                detail=breach.detail,
                refused_symbols=breach.symbols,
                **base,
            )
        return ExecutionRun(
            status=RunStatus.RUNNING,
            orders=tuple(orders),
            reserved_value=planned_value(orders),
            **base,
        )

    def _account_mismatch(self, account_id: str) -> str | None:
        """Why the plan's account is not the broker's, or ``None`` (the number is read once)."""
        if self._account_number is None:
            self._account_number = self._broker.get_account().account_number
        if self._account_number == account_id:
            return None
        return (
            f"the plan is for account {account_id} but the broker's keys open account "
            f"{self._account_number or '(no number reported)'}; nothing sent"
        )

    def _stale(self, request: ExecutionRequest) -> str | None:
        """Why the plan is stale, or ``None``: another workflow of the account executed since
        the plan was made, so the account it was made from is gone. Failing fast beats waiting
        out the buying-power timeout on cash that another plan spent."""
        if request.planned_at is None:
            return None
        changed = self._store.last_run_change(
            request.account_id, excluding=str(request.correlation_id)
        )
        if changed is None or changed <= request.planned_at:
            return None
        return (
            f"the account changed at {changed.isoformat()} (another workflow executed) after "
            f"this plan was made at {request.planned_at.isoformat()}; plan it again"
        )

    def _checked_facts(
        self, request: ExecutionRequest, legs: Sequence[Leg], symbols: Sequence[str]
    ) -> _BrokerFacts:
        """Read what sizing needs and check the plan rules; raise ``InvalidPlanError``."""
        fractionable, unavailable = self._assets(symbols)
        facts = _BrokerFacts(
            fractionable=fractionable,
            prices=self._broker.get_latest_prices(symbols),
            positions={p.symbol: p.qty for p in self._broker.get_positions()},
        )
        cash = self._broker.get_account().cash
        violations = tradability_violations(unavailable)
        funding = funding_violation(
            legs,
            cash=cash,
            positions=facts.positions,
            prices=facts.prices,
            tolerance=self._config.cash_tolerance,
        )
        if funding is not None:
            violations.append(funding)
        if violations:
            raise InvalidPlanError(
                f"plan {request.plan_hash[:12]} of workflow {request.correlation_id} breaks "
                f"execution's rules: {describe(violations)}"
            )
        return facts

    def _assets(self, symbols: Iterable[str]) -> tuple[dict[str, bool], dict[str, str]]:
        fractionable: dict[str, bool] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            try:
                asset = self._asset(symbol)
            except OrderNotFoundError:
                unavailable[symbol] = f"unknown asset {symbol}"
                continue
            if not asset.tradable:
                unavailable[symbol] = f"{symbol} is not tradable"
            fractionable[symbol] = asset.fractionable
        return fractionable, unavailable

    def _asset(self, symbol: str) -> AssetInfo:
        """The broker's answer on ``symbol``, reused for ``asset_cache_s`` (an unknown symbol
        is asked again every time: it may be listed since)."""
        now = self._monotonic()
        known = self._known_assets.get(symbol)
        if known is not None and now < known[0]:
            return known[1]
        asset = self._broker.get_asset(symbol)
        if self._config.asset_cache_s > 0:
            self._known_assets[symbol] = (now + self._config.asset_cache_s, asset)
        return asset

    # -------------------------------------------------------------- running

    def _run(self, run: ExecutionRun) -> list[LegResult]:
        recorded: dict[int, list[Attempt]] = {}
        for attempt in self._store.attempts_of(run.account_id, run.correlation_id):
            recorded.setdefault(attempt.leg, []).append(attempt)
        sells = [order for order in run.orders if order.side is OrderSide.SELL]
        buys = [order for order in run.orders if order.side is OrderSide.BUY]
        results = self._phases.run(run, sells, recorded)
        if any(order.placeable and order.leg not in recorded for order in buys):
            self._await_buying_power(buys)
        results.update(self._phases.run(run, buys, recorded))
        return [results[order.leg] for order in run.orders]

    def _await_buying_power(self, buys: Iterable[PlannedOrder]) -> None:
        """Wait (bounded) until the account can pay for the buys; then go on regardless."""
        needed = sum((order.value for order in buys if order.placeable), Decimal(0))
        deadline = time.monotonic() + self._config.buying_power_timeout_s
        available = Decimal(0)
        while True:
            try:
                available = self._broker.get_account().buying_power
            except BrokerUnavailableError as err:
                _log.warning("account unavailable while waiting for buying power", error=str(err))
            if available >= needed:
                return
            if time.monotonic() >= deadline:
                _log.warning(
                    "buying power still short; placing the buys anyway (the broker decides)",
                    needed=str(needed),
                    available=str(available),
                )
                return
            self._sleep(self._config.poll_interval_s)

    def _elapsed_ms(self, run: ExecutionRun) -> int:
        elapsed: timedelta = self._desk.now() - run.started_at
        return max(0, int(elapsed.total_seconds() * 1000))


def _plan_hash_of(run: ExecutionRun) -> str:
    """The execution plan hash: the planned legs (not their fills), stable across re-runs."""
    planned: list[Mapping[str, Any]] = [
        {
            "leg": order.leg,
            "symbol": order.symbol,
            "side": order.side,
            "qty": order.qty,
            "client_order_id": order.client_order_id,
            "full_liquidation": order.full_liquidation,
        }
        for order in run.orders
        if order.skipped is None
    ]
    return execution_plan_hash(planned, UUID(run.correlation_id))
