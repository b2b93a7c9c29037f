"""The Kafka foundation: a thin typed client wrapper and its error classes.

Only the runtime uses this package; services never import it or ``confluent_kafka``. The
embedded broker for development and tests lives in the dev-only
:mod:`alchemiser_devtools.embedded`.
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
    records_to_end,
    take_records,
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
    "records_to_end",
    "take_records",
]
