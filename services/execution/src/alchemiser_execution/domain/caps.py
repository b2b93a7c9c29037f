"""Safety caps checked before anything is sent: one order's value and the day's total.

A breach refuses the whole execution (the circuit breaker): nothing is sent and the workflow
fails with the breach's reason. The day's total counts every earlier execution of the same
account in the same trading session (what they reserved, or traded once finished) plus this
one. The session is the broker's: the date of its market clock in New York, which on the paper
exchange is the account's session clock (a replay of history counts per historical day), never
the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from alchemiser_execution.domain.sizing import PlannedOrder

__all__ = [
    "DAILY_TRADED_VALUE_EXCEEDED",
    "MAX_ORDER_VALUE_EXCEEDED",
    "CapBreach",
    "check_caps",
    "planned_value",
]

MAX_ORDER_VALUE_EXCEEDED = "max_order_value_exceeded"
DAILY_TRADED_VALUE_EXCEEDED = "daily_traded_value_exceeded"


@dataclass(frozen=True, slots=True)
class CapBreach:
    """Why an execution is refused: a reason code, a sentence, the symbols concerned."""

    reason: str
    detail: str
    symbols: tuple[str, ...]


def planned_value(orders: Sequence[PlannedOrder]) -> Decimal:
    """The estimated value of every order that will be sent."""
    return sum((order.value for order in orders if order.placeable), Decimal(0))


def check_caps(
    orders: Sequence[PlannedOrder],
    *,
    max_order_value: Decimal,
    max_daily_traded_value: Decimal,
    traded_today: Decimal,
) -> CapBreach | None:
    """The first cap ``orders`` would break, or ``None`` when all may be sent."""
    too_large = [order for order in orders if order.placeable and order.value > max_order_value]
    if too_large:
        listing = ", ".join(f"{order.symbol} {order.value:.2f}" for order in too_large)
        return CapBreach(
            MAX_ORDER_VALUE_EXCEEDED,
            f"order value above the cap of {max_order_value}: {listing}",
            tuple(order.symbol for order in too_large),
        )
    total = planned_value(orders)
    if traded_today + total > max_daily_traded_value:
        return CapBreach(
            DAILY_TRADED_VALUE_EXCEEDED,
            f"circuit breaker: {traded_today:.2f} already traded today plus {total:.2f} planned "
            f"exceeds the daily cap of {max_daily_traded_value}",
            tuple(order.symbol for order in orders if order.placeable),
        )
    return None
