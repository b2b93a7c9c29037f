"""A two-stage pipeline built only from the runtime, for the runtime's own integration tests.

Stage ``one`` turns ``WorkflowStarted`` into ``SignalGenerated``; stage ``two`` turns
``SignalGenerated`` into ``RebalancePlanned``. Each handler records its effect as a row in the
``pipeline_effects`` table through the record's database transaction, so a test can count
effects per workflow. Run a stage as a process with::

    python -m alchemiser_common.runtime alchemiser_common.testing.pipeline:register_stage_one
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alchemiser_common.events import Event, SignalGenerated, WorkflowStarted
from alchemiser_common.events.samples import sample_rebalance_planned, sample_signal_generated
from alchemiser_common.runtime.handlers import (
    EventHandlerRegistry,
    HandlerContext,
    HandlerRegistration,
    InvalidEventError,
)

__all__ = ["EFFECTS", "REJECTED_REQUESTER", "register_stage_one", "register_stage_two"]

_metadata = sa.MetaData()
#: One row per handled input: the effect the tests count (no unique constraint on purpose).
EFFECTS = sa.Table(
    "pipeline_effects",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("correlation_id", sa.String(36), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
)
#: A trigger with this ``requested_by`` is rejected by stage one as invalid (DLQ test).
REJECTED_REQUESTER = "reject-me"


def _record(context: HandlerContext, stage: str, event: Event) -> None:
    context.connection.execute(
        EFFECTS.insert().values(
            stage=stage, correlation_id=str(event.correlation_id), event_id=str(event.event_id)
        )
    )


def _stage_one(event: Event, context: HandlerContext) -> Sequence[Event]:
    assert isinstance(event, WorkflowStarted)
    if event.requested_by == REJECTED_REQUESTER:
        raise InvalidEventError(f"requested_by {event.requested_by!r} is not allowed")
    _record(context, "one", event)
    return [sample_signal_generated(event)]


def _stage_two(event: Event, context: HandlerContext) -> Sequence[Event]:
    assert isinstance(event, SignalGenerated)
    _record(context, "two", event)
    return [sample_rebalance_planned(event)]


def _register(container: Any, registry: EventHandlerRegistry, stage: str) -> None:
    _metadata.create_all(container.engine)
    if stage == "one":
        registry.register(HandlerRegistration("WorkflowStarted", lambda: _stage_one))
    else:
        registry.register(HandlerRegistration("SignalGenerated", lambda: _stage_two))


def register_stage_one(container: Any, registry: EventHandlerRegistry) -> None:
    """Stage one: WorkflowStarted -> SignalGenerated."""
    _register(container, registry, "one")


def register_stage_two(container: Any, registry: EventHandlerRegistry) -> None:
    """Stage two: SignalGenerated -> RebalancePlanned."""
    _register(container, registry, "two")
