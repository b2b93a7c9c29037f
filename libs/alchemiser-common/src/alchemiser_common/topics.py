"""The topic catalog (docs/architecture.md) and idempotent topic creation.

Every event topic has a dead-letter twin, ``<topic>.dlq``, holding the records its consumers
could not process, with the original key and a reason header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from alchemiser_common.kafka.clients import KafkaAdmin
from alchemiser_common.kafka.exceptions import BrokerUnreachableError, TopicCreationError
from alchemiser_common.settings import CommonSettings, KafkaSettings

__all__ = [
    "ALL_TOPICS",
    "CREATE_TIMEOUT_S",
    "DLQ_SUFFIX",
    "DLQ_TOPICS",
    "EVENT_TOPICS",
    "ORDER_SETTLED",
    "REBALANCE_PLANNED",
    "SIGNAL_GENERATED",
    "WORKFLOW_COMPLETED",
    "WORKFLOW_FAILED",
    "WORKFLOW_STARTED",
    "TopicReport",
    "TopicStatus",
    "create_topics",
    "dlq_topic",
    "is_dlq_topic",
]

WORKFLOW_STARTED = "workflow.started.v1"
SIGNAL_GENERATED = "strategy.signal.generated.v1"
REBALANCE_PLANNED = "portfolio.rebalance.planned.v1"
ORDER_SETTLED = "execution.order.settled.v1"
WORKFLOW_COMPLETED = "workflow.completed.v1"
WORKFLOW_FAILED = "workflow.failed.v1"

EVENT_TOPICS: tuple[str, ...] = (
    WORKFLOW_STARTED,
    SIGNAL_GENERATED,
    REBALANCE_PLANNED,
    ORDER_SETTLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
)
"""The event topics, in workflow order."""

DLQ_SUFFIX = ".dlq"

# Bounded so an unreachable cluster is reported instead of hanging a deploy job.
CREATE_TIMEOUT_S = 10.0

_METADATA_POLL_S = 0.1

_log = logging.getLogger(__name__)


def dlq_topic(topic: str) -> str:
    """The dead-letter twin of ``topic``: ``workflow.started.v1`` -> ``workflow.started.v1.dlq``.

    Raises ``ValueError`` for a topic that is already a dead-letter topic.
    """
    if is_dlq_topic(topic):
        raise ValueError(f"{topic!r} is already a dead-letter topic")
    return topic + DLQ_SUFFIX


def is_dlq_topic(topic: str) -> bool:
    """Whether ``topic`` is a dead-letter topic."""
    return topic.endswith(DLQ_SUFFIX)


DLQ_TOPICS: tuple[str, ...] = tuple(dlq_topic(topic) for topic in EVENT_TOPICS)
ALL_TOPICS: tuple[str, ...] = EVENT_TOPICS + DLQ_TOPICS
"""Every topic ``alchemiser topics create`` makes: the event topics and their DLQ twins."""


@dataclass(frozen=True)
class TopicStatus:
    """One topic after ``create_topics``: its partition count and whether this call made it."""

    name: str
    partitions: int
    created: bool


@dataclass(frozen=True)
class TopicReport:
    """What ``create_topics`` found and did, one ``TopicStatus`` per requested topic."""

    bootstrap_servers: str
    topics: tuple[TopicStatus, ...]

    @property
    def created(self) -> tuple[str, ...]:
        """Names of the topics this call created."""
        return tuple(status.name for status in self.topics if status.created)

    @property
    def existing(self) -> tuple[str, ...]:
        """Names of the topics that were already there."""
        return tuple(status.name for status in self.topics if not status.created)


def _admin(source: KafkaAdmin | CommonSettings | KafkaSettings | Mapping[str, Any]) -> KafkaAdmin:
    if isinstance(source, KafkaAdmin):
        return source
    if isinstance(source, CommonSettings):
        return KafkaAdmin(source.kafka)
    return KafkaAdmin(source)


def _partition_counts(admin: KafkaAdmin, timeout: float) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as err:
        raise BrokerUnreachableError(
            f"no Kafka broker answered at {admin.bootstrap_servers} within {timeout:g} s: "
            f"{err.args[0] if err.args else err}"
        ) from err
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None or topic.error.code() == KafkaError.NO_ERROR
    }


def _await_topics(admin: KafkaAdmin, names: set[str], timeout: float) -> dict[str, int]:
    """Metadata once every created topic shows in it (brokers propagate it shortly after)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _partition_counts(admin, timeout)
        if names <= counts.keys() or time.monotonic() >= deadline:
            return counts
        time.sleep(_METADATA_POLL_S)


def create_topics(
    admin: KafkaAdmin | CommonSettings | KafkaSettings | Mapping[str, Any],
    *,
    topics: Sequence[str] = ALL_TOPICS,
    partitions: int,
    replication_factor: int,
    timeout: float = CREATE_TIMEOUT_S,
) -> TopicReport:
    """Create the missing ``topics``; existing ones are left as they are and reported.

    Idempotent: ``TOPIC_ALREADY_EXISTS`` (a concurrent creator) counts as existing. Raises
    ``BrokerUnreachableError`` when no broker answers within ``timeout`` seconds and
    ``TopicCreationError`` naming every topic the broker refused.
    """
    client = _admin(admin)
    before = _partition_counts(client, timeout)
    missing = [name for name in dict.fromkeys(topics) if name not in before]
    created: set[str] = set()
    failures: list[str] = []
    if missing:
        futures = client.create_topics(
            missing, partitions=partitions, replication_factor=replication_factor, timeout=timeout
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout + 5.0)
                created.add(name)
            except KafkaException as err:
                error = err.args[0] if err.args else None
                if (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue
                failures.append(f"{name}: {error if error is not None else err}")
            except TimeoutError:
                failures.append(f"{name}: no answer within {timeout + 5.0:g} s")
    if failures:
        raise TopicCreationError(
            f"could not create {len(failures)} topic(s) at {client.bootstrap_servers}: "
            + "; ".join(failures)
        )
    after = _await_topics(client, created, timeout) if created else before
    statuses = tuple(
        TopicStatus(name=name, partitions=after.get(name, partitions), created=name in created)
        for name in dict.fromkeys(topics)
    )
    if created:
        _log.info("created topics %s at %s", sorted(created), client.bootstrap_servers)
    return TopicReport(bootstrap_servers=client.bootstrap_servers, topics=statuses)
