"""The Kafka foundation: a thin typed client wrapper, error classes and the embedded broker.

Only the runtime uses this package; services never import it or ``confluent_kafka``. The
embedded broker lives in :mod:`alchemiser_common.kafka.embedded` (not imported here so that
``python -m alchemiser_common.kafka.embedded`` runs cleanly).
"""

from __future__ import annotations

from alchemiser_common.kafka.classification import KafkaErrorClass, classify_kafka_error
from alchemiser_common.kafka.clients import (
    API_TIMEOUT_S,
    KafkaAdmin,
    KafkaConsumer,
    KafkaProducer,
    Message,
    TopicPartition,
    admin_config,
    consumer_config,
    producer_config,
)
from alchemiser_common.kafka.exceptions import (
    BrokerStartError,
    BrokerUnreachableError,
    KafkaClientError,
    TopicCreationError,
)

__all__ = [
    "API_TIMEOUT_S",
    "BrokerStartError",
    "BrokerUnreachableError",
    "KafkaAdmin",
    "KafkaClientError",
    "KafkaConsumer",
    "KafkaErrorClass",
    "KafkaProducer",
    "Message",
    "TopicCreationError",
    "TopicPartition",
    "admin_config",
    "classify_kafka_error",
    "consumer_config",
    "producer_config",
]
