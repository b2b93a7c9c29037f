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

**A running workflow is not triggered twice.** :func:`workflow_state` reads
``workflow.started.v1`` and the outcome topics from their beginning to their end (bounded by
:data:`SCAN_TIMEOUT_S`): a workflow that was started and has no outcome yet is *running*, and the
command refuses to publish its trigger again (``--wait`` follows it instead).

**A wait that times out fails the workflow.** :func:`wait_or_time_out` publishes one
``WorkflowFailed`` caused by the trigger (step ``trigger``, reason :data:`TIMEOUT_REASON`,
``details={"timed_out_after_s": ...}``) whose event id derives from the workflow id alone
(:func:`timeout_event_id`), after a last look at the outcome topics: a workflow gets at most
one such event, and a copy is recognised by its id.

The trigger's Kafka clients are short-lived and quiet (librdkafka's log lines and error
callbacks go nowhere): :func:`check_broker` and :func:`check_registry` probe the broker and the
registry first, within :data:`PROBE_TIMEOUT_S`, and say in one line which address did not answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from confluent_kafka import KafkaError, KafkaException

from alchemiser_common.errors import AlchemiserError, DeserializationError
from alchemiser_common.events import (
    Event,
    EventSource,
    FailureStep,
    TradingMode,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    canonical_json,
)
from alchemiser_common.kafka.clients import (
    KafkaAdmin,
    KafkaConsumer,
    KafkaProducer,
    Message,
    records_to_end,
    take_records,
)
from alchemiser_common.kafka.exceptions import BrokerUnreachableError, KafkaClientError
from alchemiser_common.serde import EventSerde, RegistryUnavailableError
from alchemiser_common.settings import KafkaSettings, RegistrySettings

__all__ = [
    "PROBE_TIMEOUT_S",
    "SCAN_TIMEOUT_S",
    "SESSION_TIMEZONE",
    "TIMEOUT_REASON",
    "WORKFLOW_ID_NAMESPACE",
    "WorkflowOutcome",
    "WorkflowState",
    "WorkflowStatus",
    "WorkflowTimeoutError",
    "build_trigger",
    "check_broker",
    "check_registry",
    "publish",
    "session_date",
    "session_start",
    "session_workflow_id",
    "timeout_event_id",
    "timeout_failure",
    "wait_for_outcome",
    "wait_or_time_out",
    "workflow_state",
]

WORKFLOW_ID_NAMESPACE = uuid.UUID("2b6f0d4e-8a1c-5e37-b9d2-7c4a1f03e658")
"""Fixed UUIDv5 namespace of session workflow ids. Never change it: a retried trigger would
stop being the same workflow as the first."""

SESSION_TIMEZONE = ZoneInfo("America/New_York")
"""The trading session's calendar: "today" of a trigger without ``as_of`` is today here."""

TIMEOUT_REASON = "timeout"
"""``reason`` of the ``WorkflowFailed`` the trigger publishes when its wait runs out."""

PROBE_TIMEOUT_S = 5.0
"""How long the broker and the registry get to answer the start-up probes."""

SCAN_TIMEOUT_S = 30.0
"""How long :func:`workflow_state` may take to read the workflow topics to their end."""

DELIVERY_TIMEOUT_S = 30.0
"""How long a published event may take to be acknowledged (librdkafka's message timeout)."""

_OUTCOME_CONSUMER = {"auto.offset.reset": "earliest"}
"""The waiter's fresh group starts at the beginning of the outcome topics (one small record
per workflow), so an outcome published before the wait began is found too."""

_QUIET: dict[str, Any] = {"log_level": 0}
"""librdkafka logs nothing below emergencies: an unreachable broker is reported in one line."""

_QUIET_LOGGER = logging.getLogger("alchemiser_common.workflow.kafka")
_QUIET_LOGGER.addHandler(logging.NullHandler())  # not Python's last-resort stderr handler
_QUIET_LOGGER.propagate = False
"""Where the trigger's clients send librdkafka's log lines and error callbacks: nowhere."""

_OUTCOME_TOPICS = (WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC)
_SCAN_TOPICS = (WorkflowStarted.TOPIC, *_OUTCOME_TOPICS)


class WorkflowTimeoutError(AlchemiserError):
    """The workflow did not complete or fail within the wait."""


class WorkflowStatus(StrEnum):
    """How a workflow ended, as the command reports it (and its exit code: 0, 1, 2)."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class WorkflowOutcome:
    """How a workflow ended: the completed or failed event."""

    event: WorkflowCompleted | WorkflowFailed

    @property
    def succeeded(self) -> bool:
        """Whether the workflow completed."""
        return isinstance(self.event, WorkflowCompleted)

    @property
    def timed_out(self) -> bool:
        """Whether the outcome is a trigger's timeout (:func:`timeout_failure`)."""
        event = self.event
        return (
            isinstance(event, WorkflowFailed)
            and event.failure_step == FailureStep.TRIGGER
            and event.reason == TIMEOUT_REASON
        )

    @property
    def status(self) -> WorkflowStatus:
        """``completed``, ``timeout`` (the trigger's wait ran out) or ``failed``."""
        if self.succeeded:
            return WorkflowStatus.COMPLETED
        return WorkflowStatus.TIMEOUT if self.timed_out else WorkflowStatus.FAILED


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """What the workflow topics say about one workflow (:func:`workflow_state`)."""

    workflow_id: uuid.UUID
    trigger: WorkflowStarted | None = None
    """The first ``WorkflowStarted`` of the workflow, if it was started."""
    started_at: datetime | None = None
    """When that trigger was published (the record's timestamp)."""
    outcome: WorkflowOutcome | None = None
    """Its outcome: a service's completed/failed event first, else a trigger's timeout."""

    @property
    def running(self) -> bool:
        """Started and not finished."""
        return self.trigger is not None and self.outcome is None


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


def timeout_event_id(workflow_id: uuid.UUID) -> uuid.UUID:
    """The event id of the workflow's timeout ``WorkflowFailed``: one per workflow.

    Not :meth:`~alchemiser_common.events.Event.caused_by`'s id, which strategy's own
    ``WorkflowFailed`` of the same trigger already has.
    """
    return uuid.uuid5(WORKFLOW_ID_NAMESPACE, f"{workflow_id}/{TIMEOUT_REASON}")


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


def timeout_failure(
    trigger: WorkflowStarted, timeout_s: float, *, now: Callable[[], datetime] = _utc_now
) -> WorkflowFailed:
    """The ``WorkflowFailed`` of a wait that ran out: caused by ``trigger``, step ``trigger``,
    reason ``timeout``, with the deterministic :func:`timeout_event_id`."""
    failure = WorkflowFailed.caused_by(
        trigger,
        source=_source(),
        occurred_at=now(),
        failure_step=FailureStep.TRIGGER,
        reason=TIMEOUT_REASON,
        details={"timed_out_after_s": f"{timeout_s:g}"},
    )
    return WorkflowFailed.model_validate(
        {**failure.model_dump(), "event_id": timeout_event_id(trigger.correlation_id)}
    )


# -- reachability --------------------------------------------------------------------------


def check_broker(kafka: KafkaSettings, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise ``BrokerUnreachableError`` (one line naming the address) unless a broker answers
    a metadata request within ``timeout_s``."""
    admin = KafkaAdmin(kafka, overrides=_QUIET, logger=_QUIET_LOGGER)
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as err:
        raise BrokerUnreachableError(
            f"Kafka broker at {kafka.bootstrap_servers} is unreachable "
            f"(no answer within {timeout_s:g} s: {_kafka_reason(err)}); "
            "check ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS"
        ) from None


def check_registry(registry: RegistrySettings, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise ``RegistryUnavailableError`` (one line naming the URL) unless the schema registry
    answers an HTTP request within ``timeout_s`` (any status: the address is right)."""
    if not registry.url.startswith(("http://", "https://")):
        return  # mock:// (tests): nothing to reach
    auth: tuple[str, str] | None = None
    if registry.basic_auth_user_info is not None:
        user, _, password = registry.basic_auth_user_info.get_secret_value().partition(":")
        auth = (user, password)
    try:
        httpx.get(f"{registry.url.rstrip('/')}/subjects", timeout=timeout_s, auth=auth)
    except httpx.HTTPError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RegistryUnavailableError(
            f"schema registry at {registry.url} is unreachable ({reason}); "
            "check ALCHEMISER_REGISTRY__URL"
        ) from None


def _kafka_reason(err: KafkaException) -> str:
    error = err.args[0] if err.args else None
    if isinstance(error, KafkaError):
        return str(error.str())
    return str(err)


# -- publishing ----------------------------------------------------------------------------


def publish(event: Event, kafka: KafkaSettings, serde: EventSerde) -> None:
    """Produce ``event`` (the trigger, or its timeout failure) and wait for its delivery.

    Idempotent producer, ``acks=all``, keyed by account, with the ``event_type``, ``event_id``
    and ``correlation_id`` headers; undelivered after :data:`DELIVERY_TIMEOUT_S` is an error.
    """
    producer = KafkaProducer(
        kafka,
        overrides={**_QUIET, "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)},
        logger=_QUIET_LOGGER,
    )
    errors: list[str] = []

    def on_delivery(error: object, _message: object) -> None:
        if error is not None:
            errors.append(str(error))

    producer.produce(
        event.TOPIC,
        value=serde.serialize(event),
        key=event.account_id.encode(),
        headers=[
            ("event_type", event.event_type.encode()),
            ("event_id", str(event.event_id).encode()),
            ("correlation_id", str(event.correlation_id).encode()),
        ],
        on_delivery=on_delivery,
    )
    remaining = producer.flush(DELIVERY_TIMEOUT_S + 5.0)
    if remaining or errors:
        detail = errors[0] if errors else f"{remaining} record(s) not delivered"
        raise KafkaClientError(
            f"could not publish {event.event_type} to {event.TOPIC} at "
            f"{kafka.bootstrap_servers}: {detail}"
        )


# -- reading the workflow topics -----------------------------------------------------------


def _reader(kafka: KafkaSettings, purpose: str, overrides: dict[str, Any]) -> KafkaConsumer:
    """A quiet consumer of a fresh group (it commits nothing and joins no group)."""
    return KafkaConsumer(
        kafka,
        group_id=f"alchemiser-trigger-{purpose}-{uuid.uuid4().hex}",
        overrides={**_QUIET, **overrides},
        logger=_QUIET_LOGGER,
    )


def _assign(
    consumer: KafkaConsumer, topics: Sequence[str], timeout_s: float
) -> set[tuple[str, int]]:
    try:
        partitions = consumer.assign_from_beginning(topics, timeout=timeout_s)
    except KafkaException as err:
        raise KafkaClientError(
            f"cannot read {', '.join(topics)}: {_kafka_reason(err)} "
            "(are the topics created? `alchemiser topics create`)"
        ) from None
    return {(str(p.topic), int(p.partition)) for p in partitions}


def _of_workflow(record: Message, wanted: bytes) -> bool:
    return dict(record.headers() or []).get("correlation_id") == wanted


def _published_at(record: Message, fallback: datetime) -> datetime:
    kind, millis = record.timestamp()
    if kind == 0 or millis < 0:  # TIMESTAMP_NOT_AVAILABLE
        return fallback
    return datetime.fromtimestamp(millis / 1000, UTC)


def workflow_state(
    workflow_id: uuid.UUID,
    kafka: KafkaSettings,
    serde: EventSerde,
    timeout_s: float = SCAN_TIMEOUT_S,
) -> WorkflowState:
    """Whether ``workflow_id`` was started and how it ended, read from the topics' beginning to
    their end (every partition of ``workflow.started.v1`` and both outcome topics).

    Raises ``BrokerUnreachableError`` when the ends are not reached within ``timeout_s``, and
    ``KafkaClientError`` when a topic is missing. A service's completed/failed event wins over
    a trigger's timeout failure of the same workflow.
    """
    consumer = _reader(kafka, "scan", {"enable.partition.eof": True})
    wanted = str(workflow_id).encode()
    trigger: WorkflowStarted | None = None
    started_at: datetime | None = None
    outcomes: list[WorkflowOutcome] = []
    try:
        partitions = _assign(consumer, _SCAN_TOPICS, timeout_s)

        def unreached(_pending: set[tuple[str, int]]) -> BrokerUnreachableError:
            return BrokerUnreachableError(
                f"Kafka broker at {kafka.bootstrap_servers} did not serve "
                f"{', '.join(_SCAN_TOPICS)} to their end within {timeout_s:g} s"
            )

        for record in records_to_end(consumer, partitions, timeout_s, unreached):
            if not _of_workflow(record, wanted):
                continue
            try:
                event = serde.deserialize(str(record.topic()), record.value())
            except DeserializationError:
                continue  # the services dead-letter it; it neither starts nor ends anything
            if isinstance(event, WorkflowStarted) and trigger is None:
                trigger, started_at = event, _published_at(record, event.occurred_at)
            elif isinstance(event, WorkflowCompleted | WorkflowFailed):
                outcomes.append(WorkflowOutcome(event))
    finally:
        consumer.close()
    outcome = next((o for o in outcomes if not o.timed_out), outcomes[0] if outcomes else None)
    return WorkflowState(workflow_id, trigger, started_at, outcome)


def wait_for_outcome(
    correlation_id: uuid.UUID, kafka: KafkaSettings, serde: EventSerde, timeout_s: float
) -> WorkflowOutcome:
    """This workflow's ``workflow.completed.v1`` / ``workflow.failed.v1`` event.

    Reads every partition of both topics from its beginning (assigned directly: no group join
    and its rebalance delay), so an outcome published before the wait started is returned as
    well as one published during it. Raises ``WorkflowTimeoutError`` after ``timeout_s``.
    """
    consumer = _reader(kafka, "wait", _OUTCOME_CONSUMER)
    deadline = time.monotonic() + timeout_s
    wanted = str(correlation_id).encode()
    try:
        _assign(consumer, _OUTCOME_TOPICS, max(timeout_s, PROBE_TIMEOUT_S))
        while time.monotonic() < deadline:
            for record in take_records(consumer, 100, 0.5):
                if record.error() is not None or not _of_workflow(record, wanted):
                    continue
                event = serde.deserialize(str(record.topic()), record.value())
                if isinstance(event, WorkflowCompleted | WorkflowFailed):
                    return WorkflowOutcome(event)
    finally:
        consumer.close()
    raise WorkflowTimeoutError(f"workflow {correlation_id} did not finish within {timeout_s:g} s")


def wait_or_time_out(
    trigger: WorkflowStarted,
    kafka: KafkaSettings,
    serde: EventSerde,
    timeout_s: float,
    *,
    now: Callable[[], datetime] = _utc_now,
) -> WorkflowOutcome:
    """Wait for ``trigger``'s workflow to end; after ``timeout_s`` fail it, once.

    When the wait runs out, the topics are read to their end one last time (an outcome that
    arrived at the deadline, or another waiter's timeout, is returned as it is); only if there
    is still none is :func:`timeout_failure` published, and returned.
    """
    try:
        return wait_for_outcome(trigger.correlation_id, kafka, serde, timeout_s)
    except WorkflowTimeoutError:
        pass
    state = workflow_state(trigger.correlation_id, kafka, serde)
    if state.outcome is not None:
        return state.outcome
    failure = timeout_failure(trigger, timeout_s, now=now)
    publish(failure, kafka, serde)
    return WorkflowOutcome(failure)
