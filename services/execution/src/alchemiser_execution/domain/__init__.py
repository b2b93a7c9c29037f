"""The execution domain: pure functions from a plan and broker facts to orders and results.

No I/O and no clock: prices, positions, quotes, attempts and ``now`` come in as values.
"""

from __future__ import annotations

from alchemiser_execution.domain.attempts import (
    FINAL_STATES,
    UNRESOLVED_STATES,
    Attempt,
    AttemptState,
    state_for,
)
from alchemiser_execution.domain.caps import (
    DAILY_TRADED_VALUE_EXCEEDED,
    MAX_ORDER_VALUE_EXCEEDED,
    CapBreach,
    check_caps,
    planned_value,
)
from alchemiser_execution.domain.legs import (
    CLIENT_ORDER_ID_PREFIX,
    Leg,
    client_order_id,
    plan_legs,
)
from alchemiser_execution.domain.lifecycle import (
    Step,
    StepKind,
    Timing,
    filled_qty,
    next_step,
    wants_limit,
)
from alchemiser_execution.domain.plan_rules import (
    PlanViolation,
    WorkflowFailure,
    WorkflowStatus,
    WorkflowVerdict,
    funding_violation,
    tradability_violations,
    weight_violations,
    workflow_verdict,
)
from alchemiser_execution.domain.pricing import (
    limit_price,
    quote_is_usable,
    spread_fraction,
    tick_size,
)
from alchemiser_execution.domain.results import (
    ORDERS_FAILED,
    ExecutionResult,
    LegResult,
    execution_result,
    order_result,
)
from alchemiser_execution.domain.sizing import PlannedOrder, shares_for, size_legs

__all__ = [
    "CLIENT_ORDER_ID_PREFIX",
    "DAILY_TRADED_VALUE_EXCEEDED",
    "FINAL_STATES",
    "MAX_ORDER_VALUE_EXCEEDED",
    "ORDERS_FAILED",
    "UNRESOLVED_STATES",
    "Attempt",
    "AttemptState",
    "CapBreach",
    "ExecutionResult",
    "Leg",
    "LegResult",
    "PlanViolation",
    "PlannedOrder",
    "Step",
    "StepKind",
    "Timing",
    "WorkflowFailure",
    "WorkflowStatus",
    "WorkflowVerdict",
    "check_caps",
    "client_order_id",
    "execution_result",
    "filled_qty",
    "funding_violation",
    "limit_price",
    "next_step",
    "order_result",
    "plan_legs",
    "planned_value",
    "quote_is_usable",
    "shares_for",
    "size_legs",
    "spread_fraction",
    "state_for",
    "tick_size",
    "tradability_violations",
    "wants_limit",
    "weight_violations",
    "workflow_verdict",
]
