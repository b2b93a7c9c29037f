"""``RebalancePlanned`` in, ``TradeExecuted`` and ``WorkflowCompleted``/``WorkflowFailed`` out;
``WorkflowStarted`` in, the workflow recorded as known; ``WorkflowFailed`` in, the workflow
recorded as failed.

The plan handler translates between events and the
:class:`~alchemiser_execution.executor.Executor`:

* nothing to trade: ``TradeExecuted`` (no orders) and ``WorkflowCompleted``;
* refused before anything was sent (market closed, a cap, a stale plan): only
  ``WorkflowFailed``;
* executed: ``TradeExecuted`` and ``WorkflowCompleted`` if every order filled, else
  ``WorkflowFailed`` (``failure_step=execution``, reason ``orders_failed``, the failed legs in
  ``details`` and their symbols in ``failed_symbols``). Partial success is a failure.

Every output is ``caused_by`` the plan, so its event id is the same on every run. Before the
executor sees a plan, in this order: a hash that does not match its content is rejected
(``PlanHashMismatchError``); target weights outside the rules are rejected
(``InvalidPlanError``, ``invalid_plan``); a plan of a workflow never seen on
``workflow.started.v1`` is handled again later while it is younger than ``workflow_wait_s``
(``WorkflowNotSeenYetError``, a ``NotReadyError``), then rejected (``UnknownWorkflowError``,
``unknown_workflow``), but never on the handler's first look at it (the trigger may sit
behind it in a backlog; see :mod:`~alchemiser_execution.domain.plan_rules`). A plan of a
workflow that already failed (seen on ``workflow.failed.v1``: an earlier step failed it, or
the trigger's ``--wait`` timed out) is refused when execution has no run for it yet: nothing
is recorded, sent or emitted (the workflow has its outcome), and the plan is dead-lettered
(``WorkflowEndedError``, ``workflow_ended``), unless it breaks a rule that needs the broker,
which is reported first (``invalid_plan``). A workflow that already has a run is resumed even
if it failed meanwhile (a plan in flight when the failure arrived, a restart after a crash):
its orders may be live at the broker and are never abandoned. The executor then checks the
rules that need the broker (tradable symbols, funded buys). A different plan for a workflow
that already executes one is rejected (``PlanConflictError``). Rejected inputs are
dead-lettered. An order whose fate stays unknown raises a ``TransientError``: the runtime
redelivers the input and the resumed run adopts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from alchemiser_common.events import (
    Event,
    EventSource,
    FailureStep,
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSummary,
    plan_hash,
)
from alchemiser_common.observability import Metrics
from alchemiser_common.runtime.handlers import HandlerContext, HandlerResult
from alchemiser_execution.adapters.workflows import WorkflowLog, record_failure, record_workflow
from alchemiser_execution.domain.plan_rules import (
    UNKNOWN_WORKFLOW_WAIT_S,
    WorkflowVerdict,
    describe,
    weight_violations,
    workflow_verdict,
)
from alchemiser_execution.exceptions import (
    InvalidPlanError,
    PlanHashMismatchError,
    UnknownWorkflowError,
    WorkflowEndedError,
    WorkflowNotSeenYetError,
)
from alchemiser_execution.executor import ExecutionReport, ExecutionRequest, Executor

__all__ = [
    "RebalancePlannedHandler",
    "WorkflowFailedHandler",
    "WorkflowStartedHandler",
    "events_for",
]


class WorkflowStartedHandler:
    """The runtime handler of ``WorkflowStarted``: no events, the workflow recorded as known."""

    def __call__(self, event: WorkflowStarted, context: HandlerContext) -> HandlerResult:
        """Record ``event``'s workflow with the trigger's inbox row (idempotent)."""
        return HandlerResult(events=(), state=record_workflow(event, context.now()))


class WorkflowFailedHandler:
    """The runtime handler of ``WorkflowFailed``: no events, the workflow recorded as failed.

    Every failure counts, whichever step emitted it; execution's own failures come back here
    too, harmlessly: their workflow has a run, which a plan resumes whatever else is known.
    """

    def __init__(self, workflows: WorkflowLog) -> None:
        self._workflows = workflows

    def __call__(self, event: WorkflowFailed, context: HandlerContext) -> HandlerResult:
        """Note the failure for the plans of this batch; record it with its inbox row."""
        self._workflows.note_failure(event)
        return HandlerResult(events=(), state=record_failure(event, context.now()))


class RebalancePlannedHandler:
    """The runtime handler of ``RebalancePlanned``."""

    def __init__(
        self,
        executor: Executor,
        workflows: WorkflowLog,
        *,
        source: EventSource,
        workflow_wait_s: float = UNKNOWN_WORKFLOW_WAIT_S,
        metrics: Metrics | None = None,
    ) -> None:
        self._executor = executor
        self._workflows = workflows
        self._source = source
        self._workflow_wait = timedelta(seconds=workflow_wait_s)
        self._metrics = metrics
        # Plans (event ids) deferred for an unknown workflow, dropped once decided: one id
        # stays only if its partition moves to another instance before the plan is decided.
        self._deferred: set[UUID] = set()

    @property
    def executor(self) -> Executor:
        """The executor the handler drives (its broker and attempt store)."""
        return self._executor

    def __call__(self, event: RebalancePlanned, context: HandlerContext) -> Sequence[Event]:
        """Check the plan, execute it (or resume its execution), return the workflow's outcome."""
        expected = plan_hash(event.plan, event.correlation_id)
        if expected != event.plan_hash:
            raise PlanHashMismatchError(
                f"plan_hash {event.plan_hash[:12]} does not match the plan ({expected[:12]})"
            )
        violations = weight_violations(event.plan.items)
        if violations:
            raise InvalidPlanError(
                f"plan {event.plan_hash[:12]} of workflow {event.correlation_id} breaks "
                f"execution's rules: {describe(violations)}"
            )
        request = ExecutionRequest(
            account_id=event.account_id,
            correlation_id=event.correlation_id,
            plan_hash=event.plan_hash,
            plan=event.plan,
            input_event_id=event.event_id,
            planned_at=event.occurred_at,
        )
        self._require_open_workflow(event, request, context)
        report = self._executor.execute(request)
        if self._metrics is not None:
            self._metrics.workflow_duration_ms.observe(report.duration_ms)
        return events_for(event, report, source=self._source, context=context)

    def _require_open_workflow(
        self, event: RebalancePlanned, request: ExecutionRequest, context: HandlerContext
    ) -> None:
        """Return if the plan may run: its workflow has a run (resume it), or was started and
        has not failed. Otherwise wait for the trigger, or reject the plan.

        A workflow with an execution run is resumed even if it failed since: its plan passed
        this check when the run was recorded (or the run predates the check), and its orders
        may be live at the broker, so they are never abandoned. A failed workflow without a run
        is refused: ``WorkflowEndedError``, after the rules that need the broker (an invalid
        plan is reported as invalid, whatever its workflow).
        """
        account_id, correlation_id = event.account_id, str(event.correlation_id)
        status = self._workflows.status(account_id, correlation_id)
        age = context.now() - event.occurred_at
        verdict = workflow_verdict(
            status=status,
            has_run=self._executor.has_run(account_id, correlation_id),
            plan_age=age,
            wait=self._workflow_wait,
            deferred_before=event.event_id in self._deferred,
        )
        if verdict is WorkflowVerdict.WAIT:
            self._deferred.add(event.event_id)
        else:
            self._deferred.discard(event.event_id)
        if verdict is WorkflowVerdict.PROCEED:
            return
        if verdict is WorkflowVerdict.ENDED and status.failure is not None:
            self._executor.check_plan(request)
            raise WorkflowEndedError(
                f"workflow {event.correlation_id} of account {event.account_id} already "
                f"{status.failure.describe()} and execution has no run for it; plan "
                f"{event.plan_hash[:12]} is not executed (it would be a second outcome)"
            )
        what = (
            f"workflow {event.correlation_id} of account {event.account_id} was not seen on "
            f"{WorkflowStarted.TOPIC}; the plan is {age.total_seconds():.0f} s old"
        )
        wait_s = self._workflow_wait.total_seconds()
        if verdict is WorkflowVerdict.WAIT:
            raise WorkflowNotSeenYetError(f"{what}; waiting for it up to {wait_s:.0f} s")
        raise UnknownWorkflowError(f"{what}; waited {wait_s:.0f} s, rejecting")


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
    # the outcome follows from the settlement: trigger -> signal -> plan -> settled -> outcome
    if result.success:
        outcome: Event = WorkflowCompleted.caused_by(
            executed,
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
            executed,
            source=source,
            occurred_at=now,
            failure_step=FailureStep.EXECUTION,
            reason=result.failure_reason,
            details=result.failure_details,
            failed_symbols=list(result.failed_symbols),
        )
    return [executed, outcome]
