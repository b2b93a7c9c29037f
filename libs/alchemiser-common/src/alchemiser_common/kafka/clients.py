"""A thin typed wrapper over confluent-kafka's Producer, Consumer and AdminClient.

This is the lower of the two layers around Kafka: it merges configuration
(``KafkaSettings.client_config()`` + role defaults + explicit overrides, later wins), wires
librdkafka's ``error_cb`` and ``logger`` to a stdlib logger, and creates the underlying
client on first use. It knows nothing of topics, serde, dedupe or the commit protocol; the
runtime above it does. Method names mirror confluent-kafka so the runtime reads the same
either way. Services never import this module or ``confluent_kafka``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.kafka.classification import KafkaErrorClass, classify_kafka_error
from alchemiser_common.settings import KafkaSettings

if TYPE_CHECKING:
    from confluent_kafka.admin._metadata import ClusterMetadata

__all__ = [
    "API_TIMEOUT_S",
    "CONSUMER_DEFAULTS",
    "PRODUCER_DEFAULTS",
    "DeliveryCallback",
    "KafkaAdmin",
    "KafkaConsumer",
    "KafkaErrorClass",
    "KafkaProducer",
    "Message",
    "TopicPartition",
    "admin_config",
    "classify_kafka_error",
    "consumer_config",
    "producer_config",
    "records_to_end",
    "take_records",
]

# Bounded default for blocking calls: a lost broker surfaces as a retriable _TIMED_OUT
# instead of a hang, and it stays under the default transaction.timeout.ms (60 s).
API_TIMEOUT_S = 30.0
# How long produce() waits for room when librdkafka's local queue is full before it gives
# the BufferError back to the caller.
_QUEUE_FULL_WAIT_S = 10.0
_QUEUE_FULL_POLL_S = 0.1

CONSUMER_DEFAULTS: Mapping[str, Any] = {
    "enable.auto.commit": False,  # offsets are committed with the outputs, never behind our back
    "isolation.level": "read_committed",
    "auto.offset.reset": "earliest",
}
PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
}

DeliveryCallback = Callable[[KafkaError | None, Message], None]
"""``on_delivery(error, message)``: called from ``poll()``/``flush()`` once per record."""

_DEFAULT_LOGGER = logging.getLogger("alchemiser_common.kafka")


class _Consumes(Protocol):
    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...


def take_records(consumer: _Consumes, max_records: int, timeout: float) -> list[Any]:
    """What ``consumer`` has already fetched (up to ``max_records``), else the first record to
    arrive within ``timeout`` seconds plus whatever came with it (empty on timeout).

    confluent-kafka's ``consume(n, timeout)`` returns only once it has ``n`` records or the
    timeout passed, so asking for a whole batch holds a lone record for the whole timeout: on
    every hop of a workflow, and in every reader waiting for a workflow's outcome. Asking for
    one first returns as soon as it is there. Works on :class:`KafkaConsumer` and on a bare
    ``confluent_kafka.Consumer``.
    """
    records = consumer.consume(max_records, 0)
    if records or timeout <= 0:
        return records
    records = consumer.consume(1, timeout)
    if records and max_records > 1:
        records += consumer.consume(max_records - 1, 0)
    return records


def records_to_end(
    consumer: _Consumes,
    partitions: Iterable[tuple[str, int]],
    timeout: float,
    unreached: Callable[[set[tuple[str, int]]], Exception],
) -> Iterator[Any]:
    """The records of the assigned ``partitions`` (topic, partition) up to the end each had
    when it was reached, in offset order per partition: the consumer must run with
    ``enable.partition.eof``, whose end-of-partition events mark the ends. A slow broker
    delays the answer but never shortens it: when the ends are not all reached within
    ``timeout`` seconds, raises ``unreached(partitions still pending)``."""
    pending = set(partitions)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() >= deadline:
            raise unreached(pending)
        for record in consumer.consume(500, 0.2):
            error = record.error()
            if error is None:
                yield record
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard((str(record.topic()), int(record.partition() or 0)))


def _merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def producer_config(
    settings: KafkaSettings,
    *,
    transactional_id: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Producer settings: shared settings, idempotent ``acks=all``, optional transactional id."""
    role: dict[str, Any] = dict(PRODUCER_DEFAULTS)
    if transactional_id is not None:
        role["transactional.id"] = transactional_id
    return _merge(settings.client_config(), role, overrides)


def consumer_config(
    settings: KafkaSettings, *, group_id: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Consumer settings: manual commits, ``read_committed``, earliest, group timing."""
    role: dict[str, Any] = {
        **CONSUMER_DEFAULTS,
        "group.id": group_id,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "fetch.wait.max.ms": settings.fetch_wait_max_ms,
    }
    return _merge(settings.client_config(), role, overrides)


def admin_config(
    settings: KafkaSettings, *, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Admin client settings: the shared settings plus overrides."""
    return _merge(settings.client_config(), overrides)


def _error_callback(logger: logging.Logger) -> Callable[[KafkaError], None]:
    def on_error(error: KafkaError) -> None:
        if error.fatal():
            logger.error("Kafka client fatal error: %s; the client cannot continue", error)
        else:
            logger.warning("Kafka client error: %s; librdkafka keeps retrying", error)

    return on_error


ClientT = TypeVar("ClientT", Producer, Consumer, AdminClient)


class _LazyClient(Generic[ClientT]):
    """Holds the merged configuration and creates the client on first use."""

    _kind = "client"

    def __init__(self, config: Mapping[str, Any], logger: logging.Logger | None) -> None:
        self._logger = logger or _DEFAULT_LOGGER
        self._config = _merge(
            {"error_cb": _error_callback(self._logger), "logger": self._logger}, config
        )
        self._client: ClientT | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The effective librdkafka configuration (a copy; includes secrets, do not log it)."""
        return dict(self._config)

    @property
    def created(self) -> bool:
        """Whether the underlying client exists yet."""
        return self._client is not None

    @property
    def client(self) -> ClientT:
        """The confluent-kafka client, created now if needed (raises ``ConfigurationError``)."""
        if self._client is None:
            try:
                self._client = self._create(dict(self._config))
            except (KafkaException, ValueError, TypeError) as err:
                message = f"invalid Kafka {self._kind} configuration: {err}"
                raise ConfigurationError(message) from err
        return self._client

    def _create(self, config: dict[str, Any]) -> ClientT:
        raise NotImplementedError


class KafkaProducer(_LazyClient[Producer]):
    """An idempotent (optionally transactional) producer."""

    _kind = "producer"

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        transactional_id: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(
            producer_config(settings, transactional_id=transactional_id, overrides=overrides),
            logger,
        )

    def _create(self, config: dict[str, Any]) -> Producer:
        return Producer(config)

    @property
    def transactional(self) -> bool:
        """Whether this producer has a ``transactional.id``."""
        return bool(self._config.get("transactional.id"))

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one record; waits up to 10 s for room when the local queue is full."""
        kwargs: dict[str, Any] = {"value": value, "key": key}
        if headers is not None:
            kwargs["headers"] = list(headers)
        if partition is not None:
            kwargs["partition"] = partition
        if on_delivery is not None:
            kwargs["on_delivery"] = on_delivery
        deadline = time.monotonic() + _QUEUE_FULL_WAIT_S
        while True:
            try:
                self.client.produce(topic, **kwargs)
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    raise
                self.client.poll(_QUEUE_FULL_POLL_S)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports and callbacks; returns how many events were served."""
        return self.client.poll(timeout)

    def flush(self, timeout: float = API_TIMEOUT_S) -> int:
        """Wait for outstanding deliveries; returns how many are still in flight."""
        return self.client.flush(timeout)

    def init_transactions(self, timeout: float = API_TIMEOUT_S) -> None:
        """Register the transactional id, aborting a predecessor's open transaction."""
        self.client.init_transactions(timeout)

    def begin_transaction(self) -> None:
        """Start a transaction."""
        self.client.begin_transaction()

    def send_offsets_to_transaction(
        self,
        positions: Sequence[TopicPartition],
        group_metadata: Any,
        timeout: float = API_TIMEOUT_S,
    ) -> None:
        """Add the consumer's positions (last processed + 1) to the current transaction."""
        self.client.send_offsets_to_transaction(list(positions), group_metadata, timeout)

    def commit_transaction(self, timeout: float = API_TIMEOUT_S) -> None:
        """Commit the current transaction (outputs and offsets together)."""
        self.client.commit_transaction(timeout)

    def abort_transaction(self, timeout: float = API_TIMEOUT_S) -> None:
        """Abort the current transaction."""
        self.client.abort_transaction(timeout)

    def close(self, timeout: float = API_TIMEOUT_S) -> int:
        """Flush and drop the client; returns how many records were left undelivered."""
        if self._client is None:
            return 0
        remaining = self._client.flush(timeout)
        self._client = None
        return remaining


class KafkaConsumer(_LazyClient[Consumer]):
    """A group consumer with manual offset management."""

    _kind = "consumer"

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        overrides: Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(consumer_config(settings, group_id=group_id, overrides=overrides), logger)

    def _create(self, config: dict[str, Any]) -> Consumer:
        return Consumer(config)

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        on_lost: Callable[[Consumer, list[TopicPartition]], None] | None = None,
    ) -> None:
        """Join the group for ``topics``; the assignment arrives during later polls."""
        kwargs: dict[str, Any] = {}
        if on_assign is not None:
            kwargs["on_assign"] = on_assign
        if on_revoke is not None:
            kwargs["on_revoke"] = on_revoke
        if on_lost is not None:
            kwargs["on_lost"] = on_lost
        self.client.subscribe(list(topics), **kwargs)

    def assign_from_beginning(
        self, topics: Sequence[str], timeout: float = API_TIMEOUT_S
    ) -> list[TopicPartition]:
        """Read every partition of ``topics`` from its first record, without joining a group
        (no rebalance wait: a reader that commits nothing needs no group). Returns them."""
        partitions: list[TopicPartition] = []
        for topic in topics:
            metadata = self.client.list_topics(topic, timeout=timeout).topics[topic]
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            partitions.extend(
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for partition in sorted(metadata.partitions)
            )
        self.client.assign(partitions)
        return partitions

    def poll(self, timeout: float) -> Message | None:
        """One record, or ``None``; check ``message.error()`` before using it."""
        return self.client.poll(timeout)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to ``num_messages`` records; check each ``message.error()``."""
        return self.client.consume(num_messages, timeout)

    def assignment(self) -> list[TopicPartition]:
        """The partitions currently assigned to this member."""
        return self.client.assignment()

    def position(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        """The next offset to fetch per partition (last consumed + 1)."""
        return self.client.position(list(partitions))

    def get_watermark_offsets(self, partition: TopicPartition) -> tuple[int, int] | None:
        """The (low, high) watermarks last seen in fetch responses (no broker round trip)."""
        offsets = self.client.get_watermark_offsets(partition, cached=True)
        return None if offsets is None else (int(offsets[0]), int(offsets[1]))

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = API_TIMEOUT_S
    ) -> list[TopicPartition]:
        """The group's committed offsets (``< 0`` where nothing is committed)."""
        return self.client.committed(list(partitions), timeout)

    def seek(self, partition: TopicPartition) -> None:
        """Fetch ``partition`` from its ``offset`` next."""
        self.client.seek(partition)

    def commit(self, offsets: Sequence[TopicPartition]) -> list[TopicPartition] | None:
        """Commit ``offsets`` synchronously (the non-transactional path)."""
        return self.client.commit(offsets=list(offsets), asynchronous=False)

    def consumer_group_metadata(self) -> Any:
        """The group metadata for ``send_offsets_to_transaction``."""
        return self.client.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group and drop the client (commits nothing)."""
        if self._client is None:
            return
        self._client.close()
        self._client = None


class KafkaAdmin(_LazyClient[AdminClient]):
    """The admin client (metadata, topic creation)."""

    _kind = "admin client"

    def __init__(
        self,
        settings_or_config: KafkaSettings | Mapping[str, Any],
        *,
        overrides: Mapping[str, Any] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if isinstance(settings_or_config, KafkaSettings):
            config = admin_config(settings_or_config, overrides=overrides)
        else:
            config = _merge(settings_or_config, overrides)
        super().__init__(config, logger)

    def _create(self, config: dict[str, Any]) -> AdminClient:
        return AdminClient(config)

    @property
    def bootstrap_servers(self) -> str:
        """The configured ``bootstrap.servers``."""
        return str(self._config.get("bootstrap.servers", ""))

    def list_topics(self, timeout: float = API_TIMEOUT_S) -> ClusterMetadata:
        """Cluster metadata (brokers, topics, partitions); raises ``KafkaException`` on timeout."""
        return self.client.list_topics(timeout=timeout)

    def create_topics(
        self,
        names: Sequence[str],
        *,
        partitions: int,
        replication_factor: int,
        timeout: float = API_TIMEOUT_S,
    ) -> dict[str, Future[None]]:
        """Ask for ``names`` to be created; one future per topic (raises ``KafkaException``)."""
        return self.client.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in names],
            operation_timeout=timeout,
            request_timeout=timeout,
        )

    def delete_topics(
        self, names: Sequence[str], *, timeout: float = API_TIMEOUT_S
    ) -> dict[str, Future[None]]:
        """Ask for ``names`` to be deleted; one future per topic (raises ``KafkaException``)."""
        return self.client.delete_topics(
            list(names), operation_timeout=timeout, request_timeout=timeout
        )
