"""An execution run: one per (account, workflow), recorded before any order is sent.

A run stores the plan hash it executes and the sized orders, so a resumed run (a redelivered
input after a crash) places exactly what the first one planned, whatever prices did since. A
run refused before sending anything (market closed, a cap) stores its reason, so a
redelivered input is refused the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from alchemiser_execution.domain.sizing import PlannedOrder

__all__ = ["ExecutionRun", "RunStatus"]


class RunStatus(StrEnum):
    """Where a run stands."""

    REFUSED = "REFUSED"
    RUNNING = "RUNNING"
    DONE = "DONE"


@dataclass(frozen=True, slots=True)
class ExecutionRun:
    """One execution of one plan for one account and workflow."""

    account_id: str
    correlation_id: str
    plan_hash: str
    input_event_id: str
    status: RunStatus
    orders: tuple[PlannedOrder, ...]
    trading_day: date
    reserved_value: Decimal
    started_at: datetime
    reason: str | None = None
    detail: str | None = None
    refused_symbols: tuple[str, ...] = ()
    traded_value: Decimal | None = None
