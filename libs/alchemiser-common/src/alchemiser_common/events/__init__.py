"""Event contracts: the envelope, the six workflow events, their records and identities.

Models are pydantic v2, frozen and strict; they must match the Avro schemas in
``schemas/avro/<topic>/v<N>.avsc`` (a test round-trips every model through its schema).
Money, quantities and weights are fixed-scale Decimals (see :mod:`.types`).
"""

from __future__ import annotations

from alchemiser_common.events.avro import from_avro_dict, to_avro_dict
from alchemiser_common.events.enums import (
    AllocationStatus,
    FailureStep,
    OrderSide,
    OrderStatus,
    OrderType,
    PlanAction,
    TradingMode,
)
from alchemiser_common.events.envelope import Event, EventSource
from alchemiser_common.events.exceptions import UnknownEventError
from alchemiser_common.events.hashing import (
    EVENT_ID_NAMESPACE,
    canonical_json,
    derive_event_id,
    execution_plan_hash,
    plan_hash,
    signal_hash,
)
from alchemiser_common.events.models import (
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.events.payloads import (
    AllocationComparison,
    OrderResult,
    PlanItem,
    RebalancePlan,
    Record,
    StrategyAllocation,
    StrategySignal,
    TargetWeight,
    WorkflowSummary,
)
from alchemiser_common.events.registry import (
    EVENT_CLASSES,
    EVENT_TYPES,
    TOPICS,
    event_class_for_topic,
    event_class_for_type,
)
from alchemiser_common.events.types import (
    MONEY,
    QUANTITY,
    WEIGHT,
    ClientOrderId,
    DecimalSpec,
    Money,
    NonEmptyStr,
    Quantity,
    Sha256Hex,
    Symbol,
    UtcDatetime,
    Weight,
    decimal_spec_of,
    quantize,
)

__all__ = [
    "EVENT_CLASSES",
    "EVENT_ID_NAMESPACE",
    "EVENT_TYPES",
    "MONEY",
    "QUANTITY",
    "TOPICS",
    "WEIGHT",
    "AllocationComparison",
    "AllocationStatus",
    "ClientOrderId",
    "DecimalSpec",
    "Event",
    "EventSource",
    "FailureStep",
    "Money",
    "NonEmptyStr",
    "OrderResult",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PlanAction",
    "PlanItem",
    "Quantity",
    "RebalancePlan",
    "RebalancePlanned",
    "Record",
    "Sha256Hex",
    "SignalGenerated",
    "StrategyAllocation",
    "StrategySignal",
    "Symbol",
    "TargetWeight",
    "TradeExecuted",
    "TradingMode",
    "UnknownEventError",
    "UtcDatetime",
    "Weight",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowStarted",
    "WorkflowSummary",
    "canonical_json",
    "decimal_spec_of",
    "derive_event_id",
    "event_class_for_topic",
    "event_class_for_type",
    "execution_plan_hash",
    "from_avro_dict",
    "plan_hash",
    "quantize",
    "signal_hash",
    "to_avro_dict",
]
