"""Closed vocabularies used in event payloads; each is an Avro ``enum`` of the same name."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AllocationStatus",
    "FailureStep",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PlanAction",
    "TradingMode",
]


class TradingMode(StrEnum):
    """Whether a workflow trades on the paper account or with real money."""

    PAPER = "paper"
    LIVE = "live"


class AllocationStatus(StrEnum):
    """Whether one strategy produced an allocation."""

    OK = "ok"
    FAILED = "failed"


class PlanAction(StrEnum):
    """What the rebalance plan does with one symbol."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class OrderSide(StrEnum):
    """Direction of an order."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Order type placed at the broker."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Alpaca order statuses; ``FINAL`` holds the ones after which nothing changes."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    HELD = "held"

    @property
    def is_final(self) -> bool:
        """Whether the order can no longer change (filled, canceled, expired, rejected)."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)


class FailureStep(StrEnum):
    """The workflow step at which a workflow failed."""

    TRIGGER = "trigger"
    STRATEGY = "strategy"
    PORTFOLIO = "portfolio"
    EXECUTION = "execution"
