"""The portfolio service's pure core: the rebalance planner, its value types, and the rule by
which an account's plans wait for its previous workflow (:mod:`.sequencing`).

No I/O, no clock, Decimal only. Rounding rules are in :mod:`.decimals`.
"""

from __future__ import annotations

from alchemiser_portfolio.domain.decimals import (
    MONEY_QUANTUM,
    WEIGHT_QUANTUM,
    canonical_decimal,
    quantize_money,
    quantize_weight,
)
from alchemiser_portfolio.domain.models import (
    AccountSnapshot,
    AllocationRow,
    PlanItem,
    PlannerConfig,
    Position,
    RebalancePlan,
    TradeAction,
)
from alchemiser_portfolio.domain.planner import (
    PRIORITY_THRESHOLDS,
    allocation_comparison,
    execution_order_key,
    plan_rebalance,
    trade_priority,
)
from alchemiser_portfolio.domain.sequencing import (
    PREVIOUS_WORKFLOW_UNFINISHED,
    AccountWorkflows,
    PlanRef,
    WorkflowEnd,
    blocking_plans,
    wait_exceeded,
)
from alchemiser_portfolio.domain.snapshot import account_snapshot_id, canonical_account_json

__all__ = [
    "MONEY_QUANTUM",
    "PREVIOUS_WORKFLOW_UNFINISHED",
    "PRIORITY_THRESHOLDS",
    "WEIGHT_QUANTUM",
    "AccountSnapshot",
    "AccountWorkflows",
    "AllocationRow",
    "PlanItem",
    "PlanRef",
    "PlannerConfig",
    "Position",
    "RebalancePlan",
    "TradeAction",
    "WorkflowEnd",
    "account_snapshot_id",
    "allocation_comparison",
    "blocking_plans",
    "canonical_account_json",
    "canonical_decimal",
    "execution_order_key",
    "plan_rebalance",
    "quantize_money",
    "quantize_weight",
    "trade_priority",
    "wait_exceeded",
]
