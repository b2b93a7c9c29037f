"""Which earlier plans of an account hold back its next one (pure: values in, values out).

An account's workflows run one after another from portfolio on: a plan is made only from the
account as it stands after the account's previous workflow *finished* (completed, failed, or
given up on). :func:`blocking_plans` names the plans still in the way; :func:`wait_exceeded`
says when the signal has waited long enough and its own workflow fails instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "PREVIOUS_WORKFLOW_UNFINISHED",
    "AccountWorkflows",
    "PlanRef",
    "WorkflowEnd",
    "blocking_plans",
    "wait_exceeded",
]

PREVIOUS_WORKFLOW_UNFINISHED = "previous_workflow_unfinished"
"""``WorkflowFailed.reason`` of a workflow that waited too long for the account's previous one."""


class WorkflowEnd(StrEnum):
    """How a workflow finished, as the ledger records it."""

    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"
    """Never finished: a later workflow of the account stopped waiting for it."""


@dataclass(frozen=True, slots=True, order=True)
class PlanRef:
    """One emitted plan: when, and of which workflow (ordered oldest first)."""

    planned_at: datetime
    correlation_id: str


@dataclass(frozen=True, slots=True)
class AccountWorkflows:
    """What the ledger knows of one account: its plans without an outcome, and which of the
    asked-about workflows have one."""

    unfinished: tuple[PlanRef, ...] = ()
    finished: frozenset[str] = frozenset()


def blocking_plans(
    unfinished: Iterable[PlanRef],
    pending: PlanRef | None,
    finished: Collection[str],
    current: str,
) -> tuple[PlanRef, ...]:
    """The plans of other workflows than ``current`` whose workflow has not finished, oldest first.

    ``unfinished`` are the recorded plans without an outcome; ``pending`` is a plan emitted but
    perhaps not recorded yet (same batch); ``finished`` the workflows known to have finished.
    """
    candidates = {plan.correlation_id: plan for plan in unfinished}
    if pending is not None:
        candidates.setdefault(pending.correlation_id, pending)
    return tuple(
        sorted(
            plan
            for correlation_id, plan in candidates.items()
            if correlation_id != current and correlation_id not in finished
        )
    )


def wait_exceeded(waiting_since: datetime, now: datetime, limit: timedelta) -> bool:
    """Whether a signal blocked since ``waiting_since`` has waited ``limit`` or longer."""
    return now - waiting_since >= limit
