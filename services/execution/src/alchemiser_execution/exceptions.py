"""Errors raised by the execution service (one-line subclasses)."""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, TransientError
from alchemiser_common.runtime.handlers import InvalidEventError

__all__ = [
    "AttemptStoreUnavailableError",
    "ExecutionError",
    "OrderOutcomeUnknownError",
    "PlanConflictError",
    "PlanHashMismatchError",
    "ReconciliationError",
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
