"""Translation between the planner's values and the event contracts.

Shared by the service's handler and the ``alchemiser portfolio plan`` dry run, so a dry-run
plan and a live plan are the same document (and hash the same way, given the same ids).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from alchemiser_common.events import SignalGenerated, payloads
from alchemiser_common.events.enums import PlanAction
from alchemiser_portfolio.domain import AllocationRow, PlannerConfig, RebalancePlan
from alchemiser_portfolio.exceptions import InvalidTargetsError

__all__ = [
    "PLAN_ID_PREFIX",
    "event_allocation_comparison",
    "event_plan",
    "plan_id_for",
    "targets_from_signal",
]

PLAN_ID_PREFIX = "plan-"
"""A live plan's id is this prefix and the workflow's correlation id."""


def plan_id_for(correlation_id: UUID) -> str:
    """The plan id of a workflow: deterministic, so a re-run plans under the same id."""
    return f"{PLAN_ID_PREFIX}{correlation_id}"


def targets_from_signal(event: SignalGenerated, config: PlannerConfig) -> dict[str, Decimal]:
    """The consolidated portfolio of ``event`` as symbol -> weight, checked like the planner.

    An empty portfolio means "all cash" and is returned empty. Otherwise the weights must sum
    to ``config.weight_sum_min..weight_sum_max`` (inclusive); the event model already refuses
    negative weights and repeated symbols.

    Raises:
        InvalidTargetsError: the weights' sum is out of range.
    """
    targets = {target.symbol: target.weight for target in event.consolidated_portfolio}
    if not targets:
        return targets
    total = sum(targets.values(), Decimal(0))
    if not config.weight_sum_min <= total <= config.weight_sum_max:
        raise InvalidTargetsError(
            f"consolidated portfolio weights sum to {total}, outside "
            f"{config.weight_sum_min}..{config.weight_sum_max}"
        )
    return targets


def event_plan(plan: RebalancePlan, plan_id: str) -> payloads.RebalancePlan:
    """The plan as the ``RebalancePlanned`` event carries it (items in execution order).

    The event has no ``deployable_value`` and no ``full_liquidation``; the latter is a SELL
    with ``target_value`` 0. Raises pydantic's ``ValidationError`` for values the event
    cannot hold (a symbol outside the event's pattern, an amount beyond its precision).
    """
    items = [
        payloads.PlanItem(
            symbol=item.symbol,
            action=PlanAction(item.action.value),
            current_weight=item.current_weight,
            target_weight=item.target_weight,
            weight_diff=item.weight_diff,
            current_value=item.current_value,
            target_value=item.target_value,
            trade_amount=item.trade_amount,
            priority=item.priority,
        )
        for item in plan.items
    ]
    return payloads.RebalancePlan(
        plan_id=plan_id,
        items=items,
        total_portfolio_value=plan.total_portfolio_value,
        total_trade_value=plan.total_trade_value,
        cash_reserve_pct=plan.cash_reserve_pct,
    )


def event_allocation_comparison(
    rows: Iterable[AllocationRow],
) -> list[payloads.AllocationComparison]:
    """The planner's allocation comparison as event records (same order: by symbol)."""
    return [
        payloads.AllocationComparison(
            symbol=row.symbol,
            target_weight=row.target_weight,
            current_weight=row.current_weight,
            weight_diff=row.diff,
        )
        for row in rows
    ]
