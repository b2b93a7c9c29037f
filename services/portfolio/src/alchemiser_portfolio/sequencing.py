"""One workflow at a time per account: a plan waits until the account's previous workflow ended.

Plans queued for one account must not all be made from the same account snapshot: the second
plan has to see the account as the first workflow's orders left it. So, on ``SignalGenerated``
for account A, :meth:`PreviousWorkflowGate.admit`:

1. reads the workflow ledger (one short read, no transaction kept): A's plans of *other*
   workflows without an outcome yet, plus the plan this process emitted last for A if its
   ledger row may still be uncommitted (emitted earlier in the same batch);
2. none: the signal is planned (and the plan recorded in the ledger with the input's inbox
   row, see :mod:`alchemiser_portfolio.adapters.ledger`);
3. some: it raises :class:`~alchemiser_common.runtime.handlers.NotReadyError`. The runtime stops
   only that partition for this batch, commits the rest (so the outcomes on
   ``workflow.completed.v1`` / ``workflow.failed.v1`` are consumed and recorded) and consumes
   the signal again after a backoff;
4. still blocked ``ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S`` (default 900 s) after this
   process first found it blocked: it returns the blocking plans; the handler then fails the
   signal's workflow (``WorkflowFailed``, step ``portfolio``, reason
   ``previous_workflow_unfinished``, details naming the oldest blocking workflow) and records
   the blocking workflows as ``abandoned``, so one lost outcome fails one workflow, not every
   later one of the account.

The wait is measured from the first time *this process* found the signal blocked (not from the
signal's ``occurred_at``), so a service that was down does not fail signals whose previous
workflow's outcome is still waiting to be consumed; a restart starts the wait again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.handlers import NotReadyError
from alchemiser_portfolio.domain.sequencing import (
    AccountWorkflows,
    PlanRef,
    blocking_plans,
    wait_exceeded,
)

__all__ = ["LedgerReader", "PreviousWorkflowGate"]

_log = get_logger("alchemiser.portfolio")


class LedgerReader(Protocol):
    """The read the gate needs from the workflow ledger."""

    def account_workflows(
        self, account_id: str, *, excluding: str, asking: Collection[str] = ()
    ) -> AccountWorkflows:
        """``account_id``'s unfinished plans (but ``excluding``'s) and which of ``asking`` ended."""
        ...


class PreviousWorkflowGate:
    """Decides whether a signal may be planned now (see the module docstring).

    It remembers, in this process only, the last plan it let through per account (its ledger
    row commits with the batch, after later inputs of the same batch are handled) and since
    when each blocked signal waits. Both are forgotten once the ledger answers for them.
    """

    def __init__(self, ledger: LedgerReader, wait: timedelta) -> None:
        self._ledger = ledger
        self._wait = wait
        self._emitted: dict[str, PlanRef] = {}
        self._waiting_since: dict[str, datetime] = {}

    def admit(self, account_id: str, correlation_id: str, now: datetime) -> tuple[PlanRef, ...]:
        """``()`` if the account is free; raise ``NotReadyError`` while it waits; after the
        wait, the blocking plans (oldest first) for the caller to fail the workflow."""
        pending = self._emitted.get(account_id)
        if pending is not None and pending.correlation_id == correlation_id:
            pending = None  # this very workflow, handled again
        asking = (pending.correlation_id,) if pending is not None else ()
        state = self._ledger.account_workflows(account_id, excluding=correlation_id, asking=asking)
        if pending is not None and pending.correlation_id in state.finished:
            del self._emitted[account_id]
            pending = None
        blockers = blocking_plans(state.unfinished, pending, state.finished, correlation_id)
        if not blockers:
            self._waiting_since.pop(correlation_id, None)
            return ()
        self._forget_stale(now)
        since = self._waiting_since.setdefault(correlation_id, now)
        oldest = blockers[0]
        if not wait_exceeded(since, now, self._wait):
            if since == now:
                _log.info(
                    "waiting for the account's previous workflow to finish",
                    previous_correlation_id=oldest.correlation_id,
                    wait_limit_s=self._wait.total_seconds(),
                )
            raise NotReadyError(
                f"account {account_id}: previous workflow {oldest.correlation_id} (planned "
                f"{oldest.planned_at.isoformat()}) has not finished; the signal is retried"
            )
        del self._waiting_since[correlation_id]
        _log.warning(
            "previous workflow still unfinished after the wait; failing this workflow",
            previous_correlation_id=oldest.correlation_id,
            waited_s=(now - since).total_seconds(),
        )
        return blockers

    def planned(self, account_id: str, correlation_id: str, planned_at: datetime) -> None:
        """Note that a plan for ``correlation_id`` was emitted (its ledger row may lag)."""
        self._emitted[account_id] = PlanRef(planned_at, correlation_id)

    def _forget_stale(self, now: datetime) -> None:
        """Drop wait starts no signal can still use (its partition moved to another process)."""
        horizon = now - 2 * self._wait
        for correlation_id, since in list(self._waiting_since.items()):
            if since < horizon:
                del self._waiting_since[correlation_id]
