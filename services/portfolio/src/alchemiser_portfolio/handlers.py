"""The portfolio handlers: ``SignalGenerated`` in, ``RebalancePlanned`` (or ``WorkflowFailed``) out;
``WorkflowCompleted`` / ``WorkflowFailed`` in, nothing out (the workflow ledger notes the end).

Outcomes of a signal, by what went wrong:

* nothing: one ``RebalancePlanned`` whose ``plan`` lists the items in execution order (SELL,
  BUY, HOLD), ``plan_id`` derived from the correlation id, ``plan_hash`` from the shared
  :func:`~alchemiser_common.events.plan_hash`, the snapshot id of the account read and the
  allocation comparison. An empty consolidated portfolio (all cash) sells every position.
  The plan is recorded in the workflow ledger (account, correlation id, planned at) as the
  result's unit of work, with the input's inbox row.
* the input is invalid (weights summing outside the configured range): ``InvalidEventError``,
  which the runtime dead-letters. Checked before anything is read.
* the account's previous workflow has not finished (:mod:`alchemiser_portfolio.sequencing`):
  ``NotReadyError``; the runtime consumes the signal again later. After
  ``ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S``: one ``WorkflowFailed`` with reason
  ``previous_workflow_unfinished`` naming the blocking workflow, which the ledger marks
  abandoned.
* the broker or the ledger is unavailable (a ``TransientError``): it propagates; the runtime
  retries.
* planning fails (a price is missing, the account is unreadable or malformed, the plan cannot
  be expressed as an event): one ``WorkflowFailed`` with ``failure_step=portfolio``.

Nothing is written here: the runtime's inbox stores the outputs and runs the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import ParamSpec, TypeVar

from pydantic import TypeAdapter, ValidationError

from alchemiser_broker import ACCOUNT_MISMATCH, BrokerError, BrokerPort
from alchemiser_common.errors import AlchemiserError, TransientError
from alchemiser_common.events import (
    EventSource,
    RebalancePlanned,
    SignalGenerated,
    WorkflowCompleted,
    WorkflowFailed,
    plan_hash,
)
from alchemiser_common.events.enums import FailureStep
from alchemiser_common.events.types import Symbol
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.handlers import HandlerContext, HandlerResult, InvalidEventError
from alchemiser_portfolio.adapters.account import read_account_snapshot
from alchemiser_portfolio.adapters.ledger import plan_recorded, workflows_finished
from alchemiser_portfolio.domain import (
    PREVIOUS_WORKFLOW_UNFINISHED,
    AccountSnapshot,
    PlannerConfig,
    PlanRef,
    WorkflowEnd,
    account_snapshot_id,
    allocation_comparison,
    plan_rebalance,
)
from alchemiser_portfolio.exceptions import InvalidTargetsError, PortfolioError
from alchemiser_portfolio.mapping import (
    event_allocation_comparison,
    event_plan,
    plan_id_for,
    targets_from_signal,
)
from alchemiser_portfolio.sequencing import PreviousWorkflowGate

__all__ = ["SignalGeneratedHandler", "WorkflowEndedHandler", "missing_prices"]

P = ParamSpec("P")
R = TypeVar("R")
_log = get_logger("alchemiser.portfolio")
_SYMBOL = TypeAdapter(Symbol)


def missing_prices(targets: Mapping[str, Decimal], account: AccountSnapshot) -> list[str]:
    """Symbols the planner would refuse for lack of a price, sorted.

    Every held position (non-zero quantity) needs a price, and so does every target with a
    positive weight that is not held.
    """
    held = {symbol for symbol, position in account.positions.items() if position.qty != 0}
    needed = held | {symbol for symbol, weight in targets.items() if weight > 0}
    return sorted(symbol for symbol in needed if account.price_of(symbol) is None)


def _event_symbols(symbols: Sequence[str]) -> list[str]:
    """The symbols a ``WorkflowFailed`` can carry (the event's pattern); others are dropped."""
    valid: list[str] = []
    for symbol in symbols:
        try:
            valid.append(_SYMBOL.validate_python(symbol))
        except ValidationError:
            continue
    return valid


class _PlanningFailedError(AlchemiserError):
    """Internal: the workflow fails at this step with ``reason`` (never leaves this module)."""

    def __init__(
        self, reason: str, details: dict[str, str], failed_symbols: Sequence[str] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details
        self.failed_symbols = list(failed_symbols)


def _asking_broker(failure: str, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``call(...)``; transient errors propagate, broker or portfolio errors fail the workflow
    with ``failure: <error>`` as the reason."""
    try:
        return call(*args, **kwargs)
    except TransientError:
        raise
    except (BrokerError, PortfolioError) as err:
        raise _PlanningFailedError(f"{failure}: {err}", {"error_type": type(err).__name__}) from err


class SignalGeneratedHandler:
    """Plans the rebalance of the account for one ``SignalGenerated`` (see the module doc)."""

    def __init__(
        self,
        broker: BrokerPort,
        config: PlannerConfig,
        source: EventSource,
        gate: PreviousWorkflowGate,
    ) -> None:
        self._broker = broker
        self._config = config
        self._source = source
        self._gate = gate
        self._account_number: str | None = None

    def __call__(self, event: SignalGenerated, context: HandlerContext) -> HandlerResult:
        """Handle one signal: the plan and its ledger row, or the failed workflow."""
        try:
            targets = targets_from_signal(event, self._config)
        except InvalidTargetsError as err:
            raise InvalidEventError(str(err)) from err
        now = context.now()
        account_id, correlation_id = event.account_id, str(event.correlation_id)
        blockers = self._gate.admit(account_id, correlation_id, now)  # NotReadyError: wait
        if blockers:
            return self._gave_up(event, blockers, now)
        try:
            planned = self._planned(event, targets, now)
        except _PlanningFailedError as failure:
            _log.warning(
                "planning failed; emitting WorkflowFailed",
                reason=failure.reason,
                failed_symbols=failure.failed_symbols,
            )
            return HandlerResult([self._failed(event, failure, now)])
        self._gate.planned(account_id, correlation_id, now)
        return HandlerResult([planned], state=plan_recorded(account_id, correlation_id, now))

    def _gave_up(
        self, event: SignalGenerated, blockers: Sequence[PlanRef], now: datetime
    ) -> HandlerResult:
        """The account's previous workflow never finished: fail this one, abandon that one."""
        oldest = blockers[0]
        failure = _PlanningFailedError(
            PREVIOUS_WORKFLOW_UNFINISHED,
            {
                "error_type": "PreviousWorkflowUnfinished",
                "previous_correlation_id": oldest.correlation_id,
                "previous_planned_at": oldest.planned_at.isoformat(),
                "unfinished_workflows": ",".join(plan.correlation_id for plan in blockers),
            },
        )
        abandoned = workflows_finished(
            event.account_id,
            [plan.correlation_id for plan in blockers],
            WorkflowEnd.ABANDONED,
            now,
        )
        return HandlerResult([self._failed(event, failure, now)], state=abandoned)

    def _snapshot(self, targets: Mapping[str, Decimal]) -> AccountSnapshot:
        """Read the account; transient errors propagate, the others fail the workflow."""
        return _asking_broker("account unreadable", read_account_snapshot, self._broker, targets)

    def _open_account(self, event: SignalGenerated) -> None:
        """Check the event is for the broker's account, then trade in the signal's session.

        The account number is read once; a mismatch fails the workflow (``account_mismatch``),
        nothing is read or planned. On the paper exchange the session moves the account's clock
        to ``as_of``, so the account is valued at that day's closes.
        """
        if self._account_number is None:
            account = _asking_broker("account unreadable", self._broker.get_account)
            self._account_number = account.account_number
        if self._account_number != event.account_id:
            raise _PlanningFailedError(
                ACCOUNT_MISMATCH,
                {
                    "error_type": "AccountMismatch",
                    "event_account_id": event.account_id,
                    "broker_account_number": self._account_number,
                },
            )
        _asking_broker(f"session {event.as_of} not set", self._broker.use_session, event.as_of)

    def _planned(
        self, event: SignalGenerated, targets: Mapping[str, Decimal], now: datetime
    ) -> RebalancePlanned:
        self._open_account(event)
        account = self._snapshot(targets)
        snapshot_id = account_snapshot_id(account)
        missing = missing_prices(targets, account)
        if missing:
            raise _PlanningFailedError(
                f"no price for {', '.join(missing)}",
                {
                    "error_type": "MissingPriceError",
                    "missing_prices": ",".join(missing),
                    "account_snapshot_id": snapshot_id,
                },
                missing,
            )
        try:
            plan = plan_rebalance(targets, account, self._config)
            comparison = event_allocation_comparison(allocation_comparison(targets, account))
            payload = event_plan(plan, plan_id_for(event.correlation_id))
        except PortfolioError as err:
            raise _PlanningFailedError(
                str(err),
                {"error_type": type(err).__name__, "account_snapshot_id": snapshot_id},
            ) from err
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise _PlanningFailedError(
                f"the plan cannot be expressed as an event: {where}: {first['msg']}",
                {"error_type": "ValidationError", "account_snapshot_id": snapshot_id},
            ) from err
        planned = RebalancePlanned.caused_by(
            event,
            source=self._source,
            occurred_at=now,
            plan_hash=plan_hash(payload, event.correlation_id),
            account_snapshot_id=snapshot_id,
            plan=payload,
            allocation_comparison=comparison,
        )
        _log.info(
            "rebalance planned",
            plan_id=payload.plan_id,
            sells=len(plan.sells),
            buys=len(plan.buys),
            holds=len(plan.holds),
            total_portfolio_value=str(plan.total_portfolio_value),
            total_trade_value=str(plan.total_trade_value),
            account_snapshot_id=snapshot_id,
        )
        return planned

    def _failed(
        self, event: SignalGenerated, failure: _PlanningFailedError, now: datetime
    ) -> WorkflowFailed:
        return WorkflowFailed.caused_by(
            event,
            source=self._source,
            occurred_at=now,
            failure_step=FailureStep.PORTFOLIO,
            reason=failure.reason,
            details={"signal_event_id": str(event.event_id), **failure.details},
            failed_symbols=_event_symbols(failure.failed_symbols),
        )


class WorkflowEndedHandler:
    """Records that a workflow finished (one instance per outcome event class).

    No output events; the unit of work inserts ``(account, correlation id)`` into the ledger's
    finished workflows (a second record of the same workflow changes nothing), so the account's
    next plan may proceed.
    """

    def __init__(self, outcome: WorkflowEnd) -> None:
        self._outcome = outcome

    def __call__(
        self, event: WorkflowCompleted | WorkflowFailed, _context: HandlerContext
    ) -> HandlerResult:
        """Return no events and the unit of work recording the workflow's end."""
        state = workflows_finished(
            event.account_id, [str(event.correlation_id)], self._outcome, event.occurred_at
        )
        return HandlerResult((), state=state)
