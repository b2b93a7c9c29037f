"""Start a workflow (publish ``WorkflowStarted``) and optionally wait for how it ended.

This is what the Kubernetes CronJob runs once a trading day (``alchemiser workflow start``), and
what operators and the end-to-end tests use. The trigger is the root of the workflow: it chooses
the correlation id and carries no causation id.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.events import (
    EventSource,
    TradingMode,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer
from alchemiser_common.serde import EventSerde
from alchemiser_common.settings import KafkaSettings

__all__ = [
    "WorkflowOutcome",
    "WorkflowTimeoutError",
    "build_trigger",
    "publish",
    "wait_for_outcome",
]


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


def build_trigger(
    account_id: str,
    *,
    requested_by: str,
    mode: TradingMode = TradingMode.PAPER,
    as_of: date | None = None,
    correlation_id: uuid.UUID | None = None,
) -> WorkflowStarted:
    """A new ``WorkflowStarted`` (a new workflow unless ``correlation_id`` is given)."""
    return WorkflowStarted(
        event_id=uuid.uuid4(),
        correlation_id=correlation_id or uuid.uuid4(),
        occurred_at=datetime.now(UTC),
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
    """Read ``workflow.completed.v1`` / ``workflow.failed.v1`` until this workflow's outcome."""
    consumer = KafkaConsumer(kafka, group_id=f"alchemiser-trigger-wait-{uuid.uuid4().hex}")
    consumer.subscribe([WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC])
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
