"""Start a workflow (publish ``WorkflowStarted``) and optionally wait for how it ended.

This is what the Kubernetes CronJob runs once a trading day (``alchemiser workflow start``), and
what operators and the end-to-end tests use. The trigger is the root of the workflow: it chooses
the correlation id and carries no causation id.

**One workflow per account and session.** By default a trigger is the *session's* trigger: its
workflow id (``correlation_id``) and its ``event_id`` are UUIDv5 under
:data:`WORKFLOW_ID_NAMESPACE`, derived from ``(account_id, session date)``, where the session
date is ``as_of`` or, without it, today's date in America/New_York (:func:`session_date`). Its
``occurred_at`` is the session's start (midnight America/New_York of that date), not the wall
clock, so a retried CronJob or a second click publishes the *same event* (every field the inbox
hashes is the same) and strategy's inbox recognises it as a duplicate: one workflow, whose
stored outputs are re-emitted at most. A repeated request that differs in what it asks
(another ``requested_by``, ``mode`` or ``as_of`` for the same session) has the same id but
another content hash: strategy dead-letters it as a CONFLICT (and counts
``dedupe_conflicts_total``); the session's workflow still runs once.

``rerun=True`` is the deliberate exception: a new random workflow id and event id and the
wall-clock ``occurred_at`` (a second workflow for the same session).

:func:`wait_for_outcome` reads the outcome topics from their beginning, so it also finds the
outcome of a workflow that finished before the wait started (a repeated trigger of a session
whose workflow already ran).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.events import (
    EventSource,
    TradingMode,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    canonical_json,
)
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import KafkaSettings

__all__ = [
    "SESSION_TIMEZONE",
    "WORKFLOW_ID_NAMESPACE",
    "WorkflowOutcome",
    "WorkflowTimeoutError",
    "build_trigger",
    "publish",
    "session_date",
    "session_start",
    "session_workflow_id",
    "wait_for_outcome",
]

WORKFLOW_ID_NAMESPACE = uuid.UUID("2b6f0d4e-8a1c-5e37-b9d2-7c4a1f03e658")
"""Fixed UUIDv5 namespace of session workflow ids. Never change it: a retried trigger would
stop being the same workflow as the first."""

SESSION_TIMEZONE = ZoneInfo("America/New_York")
"""The trading session's calendar: "today" of a trigger without ``as_of`` is today here."""

_OUTCOME_CONSUMER = {"auto.offset.reset": "earliest"}
"""The waiter's fresh group starts at the beginning of the outcome topics (one small record
per workflow), so an outcome published before the wait began is found too."""


class WorkflowTimeoutError(AlchemiserError):
    """The workflow did not complete or fail within the wait."""


@dataclass(frozen=True, slots=True)
class WorkflowOutcome:
    """How a workflow ended: the completed or failed event."""

    event: WorkflowCompleted | WorkflowFailed

    @property
    def succeeded(self) -> bool:
        """Whether the workflow completed."""
        return isinstance(self.event, WorkflowCompleted)


def _source() -> EventSource:
    return EventSource.of_package("trigger", "alchemiser-common")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def session_date(as_of: date | None, now: datetime) -> date:
    """The session a trigger is for: ``as_of``, or ``now``'s date in America/New_York."""
    return as_of if as_of is not None else now.astimezone(SESSION_TIMEZONE).date()


def session_start(session: date) -> datetime:
    """Midnight America/New_York of ``session``, in UTC (a session trigger's ``occurred_at``)."""
    return datetime.combine(session, clock_time(0), SESSION_TIMEZONE).astimezone(UTC)


def session_workflow_id(account_id: str, session: date) -> uuid.UUID:
    """The workflow id of ``account_id``'s workflow for ``session`` (UUIDv5, deterministic)."""
    name = canonical_json(["workflow", account_id, session]).decode()
    return uuid.uuid5(WORKFLOW_ID_NAMESPACE, name)


def _trigger_event_id(workflow_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(WORKFLOW_ID_NAMESPACE, f"{workflow_id}/WorkflowStarted")


def build_trigger(
    account_id: str,
    *,
    requested_by: str,
    mode: TradingMode = TradingMode.PAPER,
    as_of: date | None = None,
    rerun: bool = False,
    now: Callable[[], datetime] = _utc_now,
) -> WorkflowStarted:
    """The ``WorkflowStarted`` of ``account_id``'s session (see the module docstring).

    Without ``rerun`` the ids and ``occurred_at`` derive from ``(account_id, session date)``
    only, so the same request builds the same event. ``rerun=True`` builds a new workflow
    (random ids, wall-clock ``occurred_at``). ``now`` is the clock that decides "today".
    """
    if rerun:
        workflow_id, event_id, occurred_at = uuid.uuid4(), uuid.uuid4(), now()
    else:
        session = session_date(as_of, now())
        workflow_id = session_workflow_id(account_id, session)
        event_id, occurred_at = _trigger_event_id(workflow_id), session_start(session)
    return WorkflowStarted(
        event_id=event_id,
        correlation_id=workflow_id,
        occurred_at=occurred_at,
        source=_source(),
        account_id=account_id,
        requested_by=requested_by,
        mode=mode,
        as_of=as_of,
    )


def publish(trigger: WorkflowStarted, kafka: KafkaSettings, serde: EventSerde) -> None:
    """Produce the trigger (idempotent producer, acks=all) and wait for its delivery."""
    producer = KafkaProducer(kafka)
    errors: list[str] = []

    def on_delivery(error: object, _message: object) -> None:
        if error is not None:
            errors.append(str(error))

    producer.produce(
        trigger.TOPIC,
        value=serde.serialize(trigger),
        key=trigger.account_id.encode(),
        headers=[
            ("event_type", trigger.event_type.encode()),
            ("event_id", str(trigger.event_id).encode()),
            ("correlation_id", str(trigger.correlation_id).encode()),
        ],
        on_delivery=on_delivery,
    )
    remaining = producer.flush()
    if remaining or errors:
        detail = errors[0] if errors else f"{remaining} record(s) not delivered"
        raise AlchemiserError(f"could not publish the trigger: {detail}")


def wait_for_outcome(
    correlation_id: uuid.UUID, kafka: KafkaSettings, serde: EventSerde, timeout_s: float
) -> WorkflowOutcome:
    """This workflow's ``workflow.completed.v1`` / ``workflow.failed.v1`` event.

    Reads every partition of both topics from its beginning (assigned directly: no group join
    and its rebalance delay), so an outcome published before the wait started is returned as
    well as one published during it.
    """
    consumer = KafkaConsumer(
        kafka,
        group_id=f"alchemiser-trigger-wait-{uuid.uuid4().hex}",
        overrides=_OUTCOME_CONSUMER,
    )
    consumer.assign_from_beginning([WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC])
    deadline = time.monotonic() + timeout_s
    wanted = str(correlation_id).encode()
    try:
        while time.monotonic() < deadline:
            for record in consumer.consume(100, timeout=0.5):
                if record.error() is not None:
                    continue
                if dict(record.headers() or []).get("correlation_id") != wanted:
                    continue
                event = serde.deserialize(str(record.topic()), record.value())
                if isinstance(event, WorkflowCompleted | WorkflowFailed):
                    return WorkflowOutcome(event)
    finally:
        consumer.close()
    raise WorkflowTimeoutError(f"workflow {correlation_id} did not finish within {timeout_s:g} s")
