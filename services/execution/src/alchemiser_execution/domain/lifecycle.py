"""The life of one leg: what to do next, decided from its attempts and the time.

The executor asks :func:`next_step` on every poll and carries the step out (send, look up,
cancel, wait). Decisions depend only on the recorded attempts, so a resumed execution (after a
crash or a redelivery) continues where the last one stopped:

* no attempt yet: place attempt 0;
* the last attempt is unresolved (PENDING, UNKNOWN, NOT_PLACED): resolve it (look it up by
  ``client_order_id``; re-send under the same id only if the broker has no such order);
* filled (or the leg's quantity is filled across attempts): done, succeeded;
* rejected: done, failed;
* open: wait until its deadline (``repeg_interval`` for a limit order, ``fill_timeout`` for a
  market order, counted from when the attempt was recorded), then cancel it and wait for the
  cancel to take effect;
* ended with shares left: a limit order is followed by the next attempt (a re-peg, or the
  market order after the last peg); a market order ends the leg as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from alchemiser_common.events import OrderType
from alchemiser_execution.domain.attempts import Attempt, AttemptState
from alchemiser_execution.domain.sizing import PlannedOrder

__all__ = ["Step", "StepKind", "Timing", "filled_qty", "next_step", "wants_limit"]


class StepKind(StrEnum):
    """What the executor does next for a leg."""

    PLACE = "place"
    RESOLVE = "resolve"
    WAIT = "wait"
    CANCEL = "cancel"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Step:
    """The next step: PLACE carries the attempt number and quantity, DONE the outcome."""

    kind: StepKind
    attempt: int = 0
    qty: Decimal = Decimal(0)
    succeeded: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    """How long orders work before they are cancelled."""

    repeg_interval_s: float
    fill_timeout_s: float


def filled_qty(attempts: Sequence[Attempt]) -> Decimal:
    """Shares filled across every attempt of a leg."""
    return sum((attempt.filled_qty for attempt in attempts), Decimal(0))


def wants_limit(
    order: PlannedOrder, attempt: int, qty: Decimal, *, limit_policy: bool, max_repegs: int
) -> bool:
    """Whether attempt ``attempt`` should be a limit order (a usable quote still needed).

    Market instead: the market policy, a full liquidation, a fractional quantity (Alpaca
    takes fractional quantities only on market orders) or an attempt after the last peg.
    """
    return (
        limit_policy
        and attempt <= max_repegs
        and not order.full_liquidation
        and qty == qty.to_integral_value()
    )


def next_step(
    order: PlannedOrder,
    attempts: Sequence[Attempt],
    *,
    now: datetime,
    timing: Timing,
    cancel_requested: bool,
) -> Step:
    """The next step for ``order`` given its attempts so far (oldest first)."""
    if not attempts:
        return Step(StepKind.PLACE, attempt=0, qty=order.qty)
    current = attempts[-1]
    filled = filled_qty(attempts)
    if current.state is AttemptState.FILLED or (not order.full_liquidation and filled >= order.qty):
        return Step(StepKind.DONE, succeeded=True)
    if current.is_unresolved or current.state is AttemptState.NOT_PLACED:
        return Step(StepKind.RESOLVE, attempt=current.attempt)
    if current.state is AttemptState.REJECTED:
        return Step(StepKind.DONE, error=current.error or "rejected by the broker")
    if current.is_open:
        is_limit = current.order_type is OrderType.LIMIT
        works_for = timing.repeg_interval_s if is_limit else timing.fill_timeout_s
        if cancel_requested or now < current.created_at + timedelta(seconds=works_for):
            return Step(StepKind.WAIT)
        return Step(StepKind.CANCEL, attempt=current.attempt)
    if current.order_type is OrderType.MARKET or order.full_liquidation:
        return Step(
            StepKind.DONE,
            error=(
                f"market order {current.broker_status or current.state.value.lower()}: "
                f"filled {filled} of {order.qty}"
            ),
        )
    return Step(StepKind.PLACE, attempt=current.attempt + 1, qty=order.qty - filled)
