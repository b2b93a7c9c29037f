"""Errors raised by the execution service (one-line subclasses)."""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, DeadLetterReason, TransientError
from alchemiser_common.runtime.handlers import InvalidEventError, NotReadyError

__all__ = [
    "AttemptStoreUnavailableError",
    "ExecutionError",
    "InvalidPlanError",
    "OrderOutcomeUnknownError",
    "PlanConflictError",
    "PlanHashMismatchError",
    "ReconciliationError",
    "UnknownWorkflowError",
    "WorkflowEndedError",
    "WorkflowNotSeenYetError",
]


class ExecutionError(AlchemiserError):
    """Root of the execution service's errors."""


class AttemptStoreUnavailableError(ExecutionError, TransientError):
    """The attempts database cannot be reached; the input is retried."""


class OrderOutcomeUnknownError(ExecutionError, TransientError):
    """Some order's fate is still unknown after the bounded retries; the input is redelivered."""


class ReconciliationError(ExecutionError):
    """Start-up reconciliation could not resolve every attempt against the broker."""


class PlanConflictError(InvalidEventError):
    """A different plan arrived for a workflow that already has an execution run."""


class PlanHashMismatchError(InvalidEventError):
    """A plan's ``plan_hash`` does not match its content."""


class InvalidPlanError(InvalidEventError):
    """A plan breaks one of execution's plan rules; dead-lettered as ``invalid_plan``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=DeadLetterReason.INVALID_PLAN)


class UnknownWorkflowError(InvalidEventError):
    """A plan's workflow was never started, and the wait for it is over: ``unknown_workflow``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=DeadLetterReason.UNKNOWN_WORKFLOW)


class WorkflowEndedError(InvalidEventError):
    """A plan's workflow already failed and execution has no run for it: ``workflow_ended``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=DeadLetterReason.WORKFLOW_ENDED)


class WorkflowNotSeenYetError(ExecutionError, NotReadyError):
    """A plan's workflow trigger has not been seen yet; the plan is handled again later."""
