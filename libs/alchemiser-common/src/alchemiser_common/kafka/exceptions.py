"""Errors of the Kafka layer (one-line subclasses of ``AlchemiserError``)."""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError

__all__ = [
    "BrokerStartError",
    "BrokerUnreachableError",
    "KafkaClientError",
    "TopicCreationError",
]


class KafkaClientError(AlchemiserError):
    """A Kafka client could not be created or a Kafka call failed."""


class BrokerUnreachableError(KafkaClientError):
    """No broker answered a metadata request within the allowed time."""


class TopicCreationError(KafkaClientError):
    """The broker refused to create one or more topics."""


class BrokerStartError(AlchemiserError):
    """The embedded broker process did not start or did not become ready in time."""
