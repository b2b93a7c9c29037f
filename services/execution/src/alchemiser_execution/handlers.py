"""``RebalancePlanned`` in, ``TradeExecuted`` and ``WorkflowCompleted``/``WorkflowFailed`` out.

The handler translates between events and the :class:`~alchemiser_execution.executor.Executor`:

* nothing to trade: ``TradeExecuted`` (no orders) and ``WorkflowCompleted``;
* refused before anything was sent (market closed, a cap): only ``WorkflowFailed``;
* executed: ``TradeExecuted`` and ``WorkflowCompleted`` if every order filled, else
  ``WorkflowFailed`` (``failure_step=execution``, reason ``orders_failed``, the failed legs in
  ``details`` and their symbols in ``failed_symbols``). Partial success is a failure.

Every output is ``caused_by`` the plan, so its event id is the same on every run. A plan whose
hash does not match its content, or a different plan for a workflow that already executes
one, is rejected (``InvalidEventError``: dead-lettered). An order whose fate stays unknown
raises a ``TransientError``: the runtime redelivers the input and the resumed run adopts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alchemiser_common.events import (
    Event,
    EventSource,
    FailureStep,
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowSummary,
    plan_hash,
)
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import HandlerContext
from alchemiser_execution.exceptions import PlanHashMismatchError
from alchemiser_execution.executor import ExecutionReport, ExecutionRequest, Executor

__all__ = ["RebalancePlannedHandler", "events_for"]


class RebalancePlannedHandler:
    """The runtime handler of ``RebalancePlanned``."""

    def __init__(
        self, executor: Executor, *, source: EventSource, metrics: Metrics | None = None
    ) -> None:
        self._executor = executor
        self._source = source
        self._metrics = metrics

    @property
    def executor(self) -> Executor:
        """The executor the handler drives (its broker and attempt store)."""
        return self._executor

    def __call__(self, event: RebalancePlanned, context: HandlerContext) -> Sequence[Event]:
        """Execute the plan (or resume its execution) and return the workflow's outcome."""
        expected = plan_hash(event.plan, event.correlation_id)
        if expected != event.plan_hash:
            raise PlanHashMismatchError(
                f"plan_hash {event.plan_hash[:12]} does not match the plan ({expected[:12]})"
            )
        report = self._executor.execute(
            ExecutionRequest(
                account_id=event.account_id,
                correlation_id=event.correlation_id,
                plan_hash=event.plan_hash,
                plan=event.plan,
                input_event_id=event.event_id,
            )
        )
        if self._metrics is not None:
            self._metrics.workflow_duration_ms.observe(report.duration_ms)
        return events_for(event, report, source=self._source, context=context)


def events_for(
    event: RebalancePlanned,
    report: ExecutionReport,
    *,
    source: EventSource,
    context: HandlerContext,
) -> list[Event]:
    """The output events of one execution report."""
    now = context.now()
    run = report.run
    if report.result is None or report.execution_plan_hash is None:
        return [
            WorkflowFailed.caused_by(
                event,
                source=source,
                occurred_at=now,
                failure_step=FailureStep.EXECUTION,
                reason=run.reason or "refused",
                details={"detail": run.detail or ""},
                failed_symbols=list(run.refused_symbols),
            )
        ]
    result = report.result
    executed = TradeExecuted.caused_by(
        event,
        source=source,
        occurred_at=now,
        execution_plan_hash=report.execution_plan_hash,
        orders=list(result.orders),
        orders_placed=result.orders_placed,
        orders_succeeded=result.orders_succeeded,
        total_trade_value=result.total_trade_value,
        success=result.success,
    )
    if result.success:
        outcome: Event = WorkflowCompleted.caused_by(
            event,
            source=source,
            occurred_at=now,
            duration_ms=report.duration_ms,
            summary=WorkflowSummary(
                orders_placed=result.orders_placed,
                orders_succeeded=result.orders_succeeded,
                total_trade_value=result.total_trade_value,
                symbols_bought=list(result.symbols_bought),
                symbols_sold=list(result.symbols_sold),
            ),
        )
    else:
        outcome = WorkflowFailed.caused_by(
            event,
            source=source,
            occurred_at=now,
            failure_step=FailureStep.EXECUTION,
            reason=result.failure_reason,
            details=result.failure_details,
            failed_symbols=list(result.failed_symbols),
        )
    return [executed, outcome]
