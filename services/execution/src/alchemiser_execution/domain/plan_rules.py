"""The plan rules execution re-checks before any order: values in, violations out.

Portfolio already plans by these rules; execution checks them again (defence in depth),
because a plan's ``plan_hash`` is a plain SHA-256 anyone can recompute, not a signature:

* **target weights** — each in [0, 1], and their sum at most 1 plus
  :data:`WEIGHT_SUM_TOLERANCE` (portfolio's targets sum to 1 less its cash reserve);
* **funding** — the buys' planned amounts at most the account's cash plus the planned sell
  proceeds, times 1 plus a tolerance. A sell counts for at most the value of the position
  it sells (held quantity times the latest price): selling what is not held yields nothing;
* **tradable** — every symbol to trade is known to the broker and tradable;
* **known workflow** — the plan's workflow was started (``workflow.started.v1``); an unknown
  one is waited for while the plan is younger than a bound, then rejected. A plan is never
  rejected on its first look: execution may be catching up on a backlog in which the trigger
  sits behind the plan on its own topic, and deferring the plan once lets the runtime commit
  the other partitions' inputs (the trigger among them) before the plan is looked at again;
* **open workflow** — a workflow that already failed (``workflow.failed.v1``: a step before
  execution, or the trigger's ``--wait`` timing out) has its outcome, so a plan of it that
  execution has not started executing is refused: executing it would give the workflow a
  second outcome. A workflow execution already has a run for is resumed whatever else is
  known about it: its orders may be live at the broker, and are never abandoned.

The notional caps (one order's value, the day's total) are the circuit breaker of
:mod:`.caps`: they refuse a plan with a ``WorkflowFailed`` and a recorded run rather than
reject it, and are not repeated here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from alchemiser_common.events import OrderSide, PlanItem
from alchemiser_execution.domain.legs import Leg

__all__ = [
    "DEFAULT_CASH_TOLERANCE",
    "FUNDING",
    "TARGET_WEIGHT_RANGE",
    "TARGET_WEIGHT_SUM",
    "TRADABLE",
    "UNKNOWN_WORKFLOW_WAIT_S",
    "WEIGHT_SUM_TOLERANCE",
    "PlanViolation",
    "WorkflowFailure",
    "WorkflowStatus",
    "WorkflowVerdict",
    "describe",
    "funding_violation",
    "tradability_violations",
    "weight_violations",
    "workflow_verdict",
]

TARGET_WEIGHT_RANGE = "target_weight_range"
TARGET_WEIGHT_SUM = "target_weight_sum"
FUNDING = "funding"
TRADABLE = "tradable"

WEIGHT_SUM_TOLERANCE = Decimal("0.01")
"""How far above 1 the target weights may sum (rounding of the strategy's weights)."""
DEFAULT_CASH_TOLERANCE = Decimal("0.01")
"""Default funding slack: price moves between planning and execution (1 %)."""
UNKNOWN_WORKFLOW_WAIT_S = 120.0
"""Default wait for an unknown workflow's trigger: the trigger and the plan travel on
different topics, so the plan may be consumed first; two minutes covers a consumer's restart."""

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PlanViolation:
    """One broken rule: its name and a sentence with the numbers."""

    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class WorkflowFailure:
    """How a workflow failed: the first ``WorkflowFailed`` execution saw for it."""

    failure_step: str
    reason: str
    failed_at: datetime

    def describe(self) -> str:
        """One line: the step, the reason and when."""
        return f"failed at step {self.failure_step} ({self.reason}) at {self.failed_at.isoformat()}"


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """What execution knows of a plan's workflow from the workflow topics."""

    known: bool
    """Seen on ``workflow.started.v1`` (or ``workflow.failed.v1``): the workflow exists."""
    failure: WorkflowFailure | None = None
    """Seen failed on ``workflow.failed.v1``; ``None``: no failure seen."""


class WorkflowVerdict(StrEnum):
    """What to do with a plan given what is known of its workflow."""

    PROCEED = "proceed"
    WAIT = "wait"
    REJECT = "reject"
    ENDED = "ended"


def weight_violations(
    items: Sequence[PlanItem], *, tolerance: Decimal = WEIGHT_SUM_TOLERANCE
) -> list[PlanViolation]:
    """Target weights outside [0, 1], and a sum above ``1 + tolerance``."""
    violations = [
        PlanViolation(
            TARGET_WEIGHT_RANGE,
            f"target weight of {item.symbol} is {_plain(item.target_weight)}, outside [0, 1]",
        )
        for item in items
        if not _ZERO <= item.target_weight <= _ONE
    ]
    total = sum((item.target_weight for item in items), _ZERO)
    if total > _ONE + tolerance:
        violations.append(
            PlanViolation(
                TARGET_WEIGHT_SUM,
                f"target weights sum to {_plain(total)}, above 1 + {_plain(tolerance)}",
            )
        )
    return violations


def funding_violation(
    legs: Sequence[Leg],
    *,
    cash: Decimal,
    positions: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    tolerance: Decimal,
) -> PlanViolation | None:
    """The buys exceed cash plus sell proceeds plus ``tolerance`` (a fraction), or ``None``.

    ``positions`` maps symbols to held quantities and ``prices`` to the latest prices; a sell
    counts for ``min(planned amount, held quantity x price)`` (nothing without a price).
    """
    buys = sum((leg.amount for leg in legs if leg.side is OrderSide.BUY), _ZERO)
    if buys <= 0:
        return None
    proceeds = sum(
        (
            min(leg.amount, _held_value(positions.get(leg.symbol), prices.get(leg.symbol)))
            for leg in legs
            if leg.side is OrderSide.SELL
        ),
        _ZERO,
    )
    allowed = (cash + proceeds) * (_ONE + tolerance)
    if buys <= allowed:
        return None
    return PlanViolation(
        FUNDING,
        f"buys of {buys:.2f} exceed cash {cash:.2f} plus sell proceeds {proceeds:.2f} "
        f"plus {tolerance:%} tolerance ({allowed:.2f})",
    )


def tradability_violations(unavailable: Mapping[str, str]) -> list[PlanViolation]:
    """One violation per symbol the broker does not know or does not trade (symbol -> why)."""
    return [PlanViolation(TRADABLE, unavailable[symbol]) for symbol in sorted(unavailable)]


def workflow_verdict(
    *,
    status: WorkflowStatus,
    has_run: bool,
    plan_age: timedelta,
    wait: timedelta,
    deferred_before: bool,
) -> WorkflowVerdict:
    """Resume a run; refuse a plan of a failed workflow; proceed if the workflow is known;
    else wait while the plan is younger than ``wait``.

    ``has_run``: execution already has a run for the workflow (its plan passed these checks
    when the run was recorded, or the run predates them), so the plan resumes it, even if the
    workflow failed meanwhile. An old plan is rejected only if it was deferred before
    (``deferred_before``): see the module docstring.
    """
    if has_run:
        return WorkflowVerdict.PROCEED
    if status.failure is not None:
        return WorkflowVerdict.ENDED
    if status.known:
        return WorkflowVerdict.PROCEED
    if plan_age < wait or not deferred_before:
        return WorkflowVerdict.WAIT
    return WorkflowVerdict.REJECT


def describe(violations: Iterable[PlanViolation]) -> str:
    """One line naming every broken rule and its numbers."""
    return "; ".join(f"{violation.rule}: {violation.detail}" for violation in violations)


def _held_value(qty: Decimal | None, price: Decimal | None) -> Decimal:
    if qty is None or price is None or qty <= 0 or price <= 0:
        return _ZERO
    return qty * price


def _plain(value: Decimal) -> str:
    """``value`` without trailing zeros or an exponent (``3.000000000000`` -> ``3``)."""
    return f"{value.normalize():f}"
