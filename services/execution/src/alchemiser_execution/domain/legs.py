"""Legs of an execution: which plan items become orders, in which order, under which id.

A *leg* is one non-HOLD item of a rebalance plan. Legs are numbered from 0: every SELL first,
then every BUY, each group by the plan's priority and then by symbol, so the numbering (and
so every ``client_order_id``) depends only on the plan's content, never on how its items
happen to be listed (the plan hash ignores their order too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from alchemiser_broker.models import MAX_CLIENT_ORDER_ID_LENGTH
from alchemiser_common.events import OrderSide, PlanAction, PlanItem

__all__ = ["CLIENT_ORDER_ID_PREFIX", "Leg", "client_order_id", "plan_legs"]

CLIENT_ORDER_ID_PREFIX = "alc-"
_DIGEST_CHARS = 40

_SIDE_OF = {PlanAction.SELL: OrderSide.SELL, PlanAction.BUY: OrderSide.BUY}
_SIDE_RANK = {PlanAction.SELL: 0, PlanAction.BUY: 1}


@dataclass(frozen=True, slots=True)
class Leg:
    """One order to place for a plan item: side and dollar amount (always positive)."""

    leg: int
    symbol: str
    side: OrderSide
    amount: Decimal
    full_liquidation: bool
    priority: int


def plan_legs(items: Sequence[PlanItem]) -> list[Leg]:
    """The legs of a plan: SELLs then BUYs, by priority then symbol; HOLDs are left out.

    A SELL whose target value is zero is a full liquidation (the whole position is closed).
    """
    trades = sorted(
        (item for item in items if item.action is not PlanAction.HOLD),
        key=lambda item: (_SIDE_RANK[item.action], item.priority, item.symbol),
    )
    return [
        Leg(
            leg=index,
            symbol=item.symbol,
            side=_SIDE_OF[item.action],
            amount=abs(item.trade_amount),
            full_liquidation=item.action is PlanAction.SELL and item.target_value == 0,
            priority=item.priority,
        )
        for index, item in enumerate(trades)
    ]


def client_order_id(correlation_id: UUID, plan_hash: str, leg: int, attempt: int = 0) -> str:
    """The deterministic ``client_order_id`` of one attempt of one leg (at most 48 characters).

    ``alc-`` and the first 40 hex digits of SHA-256 over ``correlation_id|plan_hash|leg``;
    attempts after the first (limit re-pegs, the market escalation) append ``-<attempt>``.
    """
    if leg < 0 or attempt < 0:
        raise ValueError(f"leg and attempt must be >= 0, got {leg} and {attempt}")
    digest = hashlib.sha256(f"{correlation_id}|{plan_hash}|{leg}".encode()).hexdigest()
    cid = f"{CLIENT_ORDER_ID_PREFIX}{digest[:_DIGEST_CHARS]}"
    if attempt:
        cid = f"{cid}-{attempt}"
    if len(cid) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise ValueError(f"attempt {attempt} makes the client_order_id longer than allowed")
    return cid
