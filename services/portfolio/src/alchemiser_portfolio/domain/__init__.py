"""The portfolio service's pure core: the rebalance planner and its value types.

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
from alchemiser_portfolio.domain.snapshot import account_snapshot_id, canonical_account_json

__all__ = [
    "MONEY_QUANTUM",
    "PRIORITY_THRESHOLDS",
    "WEIGHT_QUANTUM",
    "AccountSnapshot",
    "AllocationRow",
    "PlanItem",
    "PlannerConfig",
    "Position",
    "RebalancePlan",
    "TradeAction",
    "account_snapshot_id",
    "allocation_comparison",
    "canonical_account_json",
    "canonical_decimal",
    "execution_order_key",
    "plan_rebalance",
    "quantize_money",
    "quantize_weight",
    "trade_priority",
]
