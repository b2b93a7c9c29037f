"""Order attempts: one broker order per attempt, and the states an attempt goes through.

An attempt is written ``PENDING`` *before* its order is sent and moves on only when the
broker's answer (or a look-up by ``client_order_id``) says what happened::

    PENDING --accepted--> SUBMITTED --final--> FILLED | PARTIALLY_FILLED | CANCELED | EXPIRED
       |                                         (PARTIALLY_FILLED: ended with some fill)
       +--refused--> REJECTED
       +--outcome unknown--> UNKNOWN --look-up--> (as above) | NOT_PLACED
       +--look-up finds no order--> NOT_PLACED (re-sent under the same id when resumed)

PENDING and UNKNOWN are the only states that do not say whether the broker holds the order;
reconciliation resolves both. NOT_PLACED is known: the broker has no order under the id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from alchemiser_broker.models import BrokerOrder
from alchemiser_common.events import OrderSide, OrderStatus, OrderType

__all__ = ["FINAL_STATES", "UNRESOLVED_STATES", "Attempt", "AttemptState", "state_for"]


class AttemptState(StrEnum):
    """Where an attempt stands, as far as the service knows."""

    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    FILLED = "FILLED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    NOT_PLACED = "NOT_PLACED"
    UNKNOWN = "UNKNOWN"


UNRESOLVED_STATES = frozenset({AttemptState.PENDING, AttemptState.UNKNOWN})
FINAL_STATES = frozenset(
    {
        AttemptState.FILLED,
        AttemptState.PARTIALLY_FILLED,
        AttemptState.CANCELED,
        AttemptState.REJECTED,
        AttemptState.EXPIRED,
    }
)


def state_for(order: BrokerOrder) -> AttemptState:
    """The attempt state that the broker's view of ``order`` means."""
    status = order.status
    if status is OrderStatus.FILLED:
        return AttemptState.FILLED
    if status is OrderStatus.REJECTED:
        return AttemptState.REJECTED
    if status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        if order.filled_qty > 0:
            return AttemptState.PARTIALLY_FILLED
        return AttemptState.CANCELED if status is OrderStatus.CANCELED else AttemptState.EXPIRED
    return AttemptState.SUBMITTED


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt to place one leg's order, as recorded before and after it is sent.

    ``qty`` is what the request asks (for a close-position attempt: the position planned);
    ``close_position`` attempts are sent as the broker's close-position call.
    """

    account_id: str
    correlation_id: str
    leg: int
    attempt: int
    client_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    close_position: bool
    state: AttemptState
    created_at: datetime
    updated_at: datetime
    broker_order_id: str | None = None
    broker_status: str | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    error: str | None = None

    @property
    def is_final(self) -> bool:
        """Whether nothing about this attempt can change any more."""
        return self.state in FINAL_STATES

    @property
    def is_open(self) -> bool:
        """Whether the broker holds the order and it may still fill."""
        return self.state is AttemptState.SUBMITTED

    @property
    def is_unresolved(self) -> bool:
        """Whether it is unknown if the broker holds the order."""
        return self.state in UNRESOLVED_STATES

    @property
    def filled_value(self) -> Decimal:
        """``filled_qty * filled_avg_price`` (zero without fills)."""
        if self.filled_avg_price is None:
            return Decimal(0)
        return self.filled_qty * self.filled_avg_price

    def observed(self, order: BrokerOrder, now: datetime) -> Attempt:
        """This attempt updated with the broker's view of its order."""
        return replace(
            self,
            state=state_for(order),
            broker_order_id=order.broker_order_id,
            broker_status=order.status.value,
            filled_qty=order.filled_qty,
            filled_avg_price=order.filled_avg_price,
            submitted_at=order.submitted_at or self.submitted_at,
            filled_at=order.filled_at,
            updated_at=now,
        )

    def marked(self, state: AttemptState, now: datetime, error: str | None = None) -> Attempt:
        """This attempt moved to ``state`` without a broker order (refused, unknown, absent)."""
        return replace(self, state=state, error=error or self.error, updated_at=now)
