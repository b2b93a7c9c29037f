"""What an execution did: one ``OrderResult`` per leg, the totals, and the failure if any.

A leg's result folds its attempts together: the quantity filled across all of them, their
volume-weighted average price, and the last attempt's ids, type and status. The workflow
succeeds only if every leg that should trade filled completely; partial success is a failure.
Skipped legs (too small to trade) are not orders and appear in no result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from alchemiser_common.events import OrderResult, OrderSide, OrderStatus, OrderType
from alchemiser_common.events.types import MONEY
from alchemiser_execution.domain.attempts import Attempt
from alchemiser_execution.domain.lifecycle import filled_qty
from alchemiser_execution.domain.sizing import PlannedOrder

__all__ = ["ORDERS_FAILED", "ExecutionResult", "LegResult", "execution_result", "order_result"]

ORDERS_FAILED = "orders_failed"


@dataclass(frozen=True, slots=True)
class LegResult:
    """How one leg ended: its planned order, its attempts (oldest first), success or error."""

    order: PlannedOrder
    attempts: tuple[Attempt, ...]
    succeeded: bool
    error: str | None = None

    @property
    def placed(self) -> bool:
        """Whether the broker accepted at least one order for this leg."""
        return any(attempt.broker_order_id is not None for attempt in self.attempts)

    @property
    def filled_qty(self) -> Decimal:
        """Shares filled across the leg's attempts."""
        return filled_qty(self.attempts)

    @property
    def filled_value(self) -> Decimal:
        """Money traded by the leg's fills."""
        return sum((attempt.filled_value for attempt in self.attempts), Decimal(0))


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The totals of an execution and, when it failed, why and for which symbols."""

    orders: tuple[OrderResult, ...]
    orders_placed: int
    orders_succeeded: int
    total_trade_value: Decimal
    success: bool
    symbols_bought: tuple[str, ...]
    symbols_sold: tuple[str, ...]
    failed_symbols: tuple[str, ...]
    failure_details: dict[str, str]

    @property
    def failure_reason(self) -> str:
        """The ``WorkflowFailed.reason`` of a failed execution."""
        return ORDERS_FAILED


def _status(leg: LegResult, last: Attempt | None) -> OrderStatus:
    if leg.succeeded:
        return OrderStatus.FILLED
    if last is None or last.broker_status is None:
        return OrderStatus.REJECTED
    return OrderStatus(last.broker_status)


def order_result(leg: LegResult) -> OrderResult:
    """The ``OrderResult`` of one leg."""
    order = leg.order
    last = leg.attempts[-1] if leg.attempts else None
    filled = leg.filled_qty
    average = leg.filled_value / filled if filled > 0 else None
    submitted = [a.submitted_at for a in leg.attempts if a.submitted_at is not None]
    fills = [a.filled_at for a in leg.attempts if a.filled_at is not None]
    return OrderResult(
        leg=order.leg,
        symbol=order.symbol,
        side=order.side,
        qty=max(order.qty, filled),
        order_type=last.order_type if last is not None else OrderType.MARKET,
        client_order_id=last.client_order_id if last is not None else order.client_order_id,
        broker_order_id=last.broker_order_id if last is not None else None,
        status=_status(leg, last),
        filled_qty=filled,
        filled_avg_price=MONEY(average) if average is not None else None,
        submitted_at=min(submitted) if submitted else None,
        filled_at=max(fills) if fills else None,
        error=None if leg.succeeded else (leg.error or order.error),
    )


def execution_result(legs: Sequence[LegResult]) -> ExecutionResult:
    """Fold the leg results into the execution's totals and failure details."""
    traded = [leg for leg in legs if leg.order.skipped is None]
    failed = [leg for leg in traded if not leg.succeeded]
    details = {f"leg_{leg.order.leg}": leg.error or leg.order.error or "failed" for leg in failed}
    placed = sum(1 for leg in traded if leg.placed)
    if failed:
        details["summary"] = f"{len(failed)} of {len(traded)} orders failed"
        details["orders_placed"] = str(placed)
    return ExecutionResult(
        orders=tuple(order_result(leg) for leg in traded),
        orders_placed=placed,
        orders_succeeded=sum(1 for leg in traded if leg.succeeded),
        total_trade_value=MONEY(sum((leg.filled_value for leg in traded), Decimal(0))),
        success=not failed,
        symbols_bought=_symbols(traded, OrderSide.BUY),
        symbols_sold=_symbols(traded, OrderSide.SELL),
        failed_symbols=tuple(sorted({leg.order.symbol for leg in failed})),
        failure_details=details,
    )


def _symbols(legs: Sequence[LegResult], side: OrderSide) -> tuple[str, ...]:
    return tuple(
        sorted({leg.order.symbol for leg in legs if leg.order.side is side and leg.filled_qty > 0})
    )
