"""A two-stage pipeline built only from the runtime, for the runtime's own integration tests.

Stage ``one`` turns ``WorkflowStarted`` into ``SignalGenerated``; stage ``two`` turns
``SignalGenerated`` into ``RebalancePlanned``. Each handler returns its effect as a unit of
work (a row in the ``pipeline_effects`` table) that the runtime writes in the inbox
transaction, so a test can count effects per workflow. Run a stage as a process with::

    python -m alchemiser_common.runtime alchemiser_devtools.pipeline:STAGE_ONE
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alchemiser_common.events import Event, SignalGenerated, WorkflowStarted
from alchemiser_common.events.samples import sample_rebalance_planned, sample_signal_generated
from alchemiser_common.inbox import UnitOfWork
from alchemiser_common.runtime.declaration import Service, ServiceContainer
from alchemiser_common.runtime.handlers import (
    Handler,
    HandlerContext,
    HandlerResult,
    InvalidEventError,
)
from alchemiser_common.settings import CommonSettings

__all__ = ["EFFECTS", "REJECTED_REQUESTER", "STAGE_ONE", "STAGE_TWO"]

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


def _effect(stage: str, event: Event) -> UnitOfWork:
    def write(connection: Connection) -> None:
        connection.execute(
            EFFECTS.insert().values(
                stage=stage, correlation_id=str(event.correlation_id), event_id=str(event.event_id)
            )
        )

    return write


def _stage_one(event: WorkflowStarted, _context: HandlerContext) -> HandlerResult:
    if event.requested_by == REJECTED_REQUESTER:
        raise InvalidEventError(f"requested_by {event.requested_by!r} is not allowed")
    return HandlerResult([sample_signal_generated(event)], _effect("one", event))


def _stage_two(event: SignalGenerated, _context: HandlerContext) -> HandlerResult:
    return HandlerResult([sample_rebalance_planned(event)], _effect("two", event))


def _build_stage_one(container: ServiceContainer[CommonSettings]) -> Handler[WorkflowStarted]:
    _metadata.create_all(container.engine)
    return _stage_one


def _build_stage_two(container: ServiceContainer[CommonSettings]) -> Handler[SignalGenerated]:
    _metadata.create_all(container.engine)
    return _stage_two


STAGE_ONE = Service(
    name="stage-one",
    settings=CommonSettings,
    handlers={WorkflowStarted: _build_stage_one},
    description="Test pipeline stage one: WorkflowStarted -> SignalGenerated.",
)
STAGE_TWO = Service(
    name="stage-two",
    settings=CommonSettings,
    handlers={SignalGenerated: _build_stage_two},
    description="Test pipeline stage two: SignalGenerated -> RebalancePlanned.",
)
