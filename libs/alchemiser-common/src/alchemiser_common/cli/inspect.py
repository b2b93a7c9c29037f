"""What the operator commands share: reading topics, decoding records, reporting errors.

* :class:`Target` — the cluster and registry a command talks to (``CommonSettings``, with the
  ``--bootstrap-servers``/``--registry`` options winning) and the bound of every wait.
* :class:`TopicReader` — a consumer that joins no group and commits nothing: topic metadata,
  watermarks, :meth:`~TopicReader.read` of offset ranges up to the high watermarks seen when
  the read began (so a busy topic does not keep it going), and :meth:`~TopicReader.follow`
  for ``tail``. librdkafka is kept quiet (``log_level`` 0 and a silent logger), so an
  unreachable broker is one line, not hundreds.
* :class:`Decoder` — Avro decoding through the registry with short timeouts; a record that
  does not decode is kept with the reason instead of raised. Dead letters are decoded with
  their original topic's schema.
* :func:`reproduce` — produce records (idempotent producer, bounded flush), for ``dlq
  redrive`` and ``replay``.
* :func:`operator_errors` — turns :class:`OperatorError` (something the operator can fix: an
  unreachable broker or registry, an unknown topic, a bad offset) into one ``error:`` line and
  exit code 2, and :class:`DeliveryError` into exit code 1. Never a traceback.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import typer
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from alchemiser_common.errors import ConfigurationError, DeserializationError
from alchemiser_common.events import (
    AllocationStatus,
    Event,
    PlanAction,
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from alchemiser_common.kafka.clients import KafkaConsumer, KafkaProducer
from alchemiser_common.serde import EventSerde, RegistryUnavailableError
from alchemiser_common.settings import (
    CommonSettings,
    KafkaSettings,
    RegistrySettings,
    load_settings,
)
from alchemiser_common.topics import DLQ_SUFFIX, is_dlq_topic

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "QUIET_CLIENT",
    "Decoded",
    "Decoder",
    "Delivered",
    "DeliveryError",
    "OperatorError",
    "Outgoing",
    "PartitionRange",
    "Target",
    "TopicReader",
    "TopicRecord",
    "format_delay",
    "format_time",
    "operator_errors",
    "progress",
    "reproduce",
    "summarize",
    "target",
]

DEFAULT_TIMEOUT_S = 10.0
"""How long a command waits for the broker or registry to answer before it gives up."""

QUIET_CLIENT: Mapping[str, Any] = {"log_level": 0}
"""librdkafka's own connection complaints would bury the one line a command prints."""

_QUIET_LOGGER = logging.getLogger("alchemiser_common.cli.kafka")
_QUIET_LOGGER.addHandler(logging.NullHandler())
_QUIET_LOGGER.propagate = False  # error_cb's warnings ("keeps retrying") stay out of the output

_READ_BATCH = 500
_POLL_S = 0.2
_PROGRESS_MIN_RECORDS = 2_000
_SHORT_ID = 8


class OperatorError(Exception):
    """Something the operator can fix (address, topic, offset): one line, exit code 2."""


class DeliveryError(Exception):
    """Records could not be produced (after the broker answered): one line, exit code 1."""


@contextmanager
def operator_errors() -> Iterator[None]:
    """Report :class:`OperatorError` (exit 2) and :class:`DeliveryError` (exit 1) in one line."""
    try:
        yield
    except OperatorError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except ConfigurationError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except DeliveryError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


# ----------------------------------------------------------------------------- target


@dataclass(frozen=True, slots=True)
class Target:
    """The cluster and registry a command talks to, and the bound of every wait."""

    kafka: KafkaSettings
    registry: RegistrySettings
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def bootstrap_servers(self) -> str:
        """The configured ``host:port`` list."""
        return self.kafka.bootstrap_servers

    def unreachable(self, detail: object = None) -> OperatorError:
        """The error of a broker that did not answer in time."""
        suffix = f" ({detail})" if detail else ""
        return OperatorError(
            f"no Kafka broker answered at {self.bootstrap_servers} within {self.timeout_s:g} s"
            f"{suffix}; check ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS or --bootstrap-servers"
        )


def target(
    bootstrap_servers: str | None = None,
    registry_url: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Target:
    """The :class:`Target` from ``CommonSettings`` with the options applied (``OperatorError``)."""
    try:
        settings = load_settings(CommonSettings)
    except ConfigurationError as err:
        raise OperatorError(str(err)) from None
    kafka = settings.kafka
    if bootstrap_servers is not None:
        try:
            kafka = KafkaSettings.model_validate(
                {**kafka.model_dump(), "bootstrap_servers": bootstrap_servers}
            )
        except ValidationError:
            raise OperatorError(
                f"--bootstrap-servers {bootstrap_servers!r} is not a host:port list"
            ) from None
    registry = settings.registry
    if registry_url:
        try:
            registry = RegistrySettings(
                url=registry_url, basic_auth_user_info=registry.basic_auth_user_info
            )
        except ValidationError:
            raise OperatorError(
                f"--registry {registry_url!r} is not an http(s) URL like http://127.0.0.1:8081"
            ) from None
    return Target(kafka=kafka, registry=registry, timeout_s=timeout_s)


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record as read: position, key, value bytes, headers and the record's timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: datetime | None

    @classmethod
    def of(cls, message: Any) -> TopicRecord:
        """The record of a consumed confluent-kafka message."""
        kind, millis = message.timestamp()
        stamp = datetime.fromtimestamp(millis / 1000, UTC) if kind and millis >= 0 else None
        return cls(
            topic=str(message.topic()),
            partition=int(message.partition()),
            offset=int(message.offset()),
            key=message.key(),
            value=message.value(),
            headers=tuple(
                (str(name), bytes(data or b"")) for name, data in message.headers() or ()
            ),
            timestamp=stamp,
        )

    def header(self, name: str) -> str | None:
        """The last header called ``name``, as text (``None`` when absent)."""
        for header, data in reversed(self.headers):
            if header == name:
                return data.decode("utf-8", "replace")
        return None

    @property
    def position(self) -> str:
        """``topic[partition]@offset``."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def key_text(self) -> str | None:
        """The key as text (``None`` for a record without one)."""
        return None if self.key is None else self.key.decode("utf-8", "replace")

    @property
    def original_topic(self) -> str:
        """The topic whose schema the value was written with (a dead letter's original)."""
        if not is_dlq_topic(self.topic):
            return self.topic
        return self.header("dlq.original_topic") or self.topic.removesuffix(DLQ_SUFFIX)

    def headers_json(self) -> dict[str, str]:
        """The headers as ``{name: text}`` (the last of repeated names)."""
        return {name: data.decode("utf-8", "replace") for name, data in self.headers}


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``start`` (inclusive; ``OFFSET_BEGINNING`` for the first record) to ``end``
    (exclusive; ``None``: the high watermark the first fetch reports) of one partition."""

    topic: str
    partition: int
    start: int
    end: int | None = None

    @property
    def size(self) -> int | None:
        """How many offsets the range spans (``None`` while its end is unknown)."""
        if self.end is None or self.start < 0:
            return None
        return max(self.end - self.start, 0)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A transient Rich progress bar on standard error while a long operation runs.

    Shown only on a terminal and for at least a few thousand records, so ``--json`` output,
    pipes and tests see nothing. Yields ``advance(n)``.
    """
    console = Console(stderr=True)
    if not console.is_terminal or (total is not None and total < _PROGRESS_MIN_RECORDS):
        yield lambda _count: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.advance(task, count)


class TopicReader:
    """A consumer of one cluster that joins no group and commits nothing (use as ``with``)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._consumer = KafkaConsumer(
            target.kafka,
            group_id=f"alchemiser-cli-{uuid.uuid4().hex}",
            overrides={**QUIET_CLIENT, "enable.partition.eof": True},
            logger=_QUIET_LOGGER,
        )

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the consumer (nothing to commit)."""
        self._consumer.close()

    def partitions(self, topics: Sequence[str]) -> dict[str, list[int]]:
        """Each topic's partitions; ``OperatorError`` for an unreachable broker or a missing
        topic (one metadata request for all of them)."""
        try:
            metadata = self._consumer.client.list_topics(timeout=self._target.timeout_s)
        except KafkaException as err:
            raise self._target.unreachable(_kafka_detail(err)) from None
        found: dict[str, list[int]] = {}
        missing: list[str] = []
        for topic in dict.fromkeys(topics):
            entry = metadata.topics.get(topic)
            if entry is None or entry.error is not None or not entry.partitions:
                missing.append(topic)
            else:
                found[topic] = sorted(entry.partitions)
        if missing:
            raise OperatorError(
                f"no topic {', '.join(missing)} at {self._target.bootstrap_servers} "
                "(`alchemiser topics create` makes the catalog's topics; "
                "`alchemiser topics list` shows what exists)"
            )
        return found

    def _listed(self, topic: str, partition: int) -> tuple[int, int]:
        try:
            offsets = self._consumer.client.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self._target.timeout_s, cached=False
            )
        except KafkaException as err:
            raise self._target.unreachable(_kafka_detail(err)) from None
        if offsets is None:
            raise self._target.unreachable(f"no offsets for {topic}[{partition}]")
        return int(offsets[0]), int(offsets[1])

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """The partition's (low, high) offsets now.

        The broker's ListOffsets answer is checked by reading the tail of the partition: the
        embedded broker (tansu) answers it with the start of the last record batch plus one,
        while its fetch responses carry the true high watermark.
        """
        low, listed = self._listed(topic, partition)
        if listed <= low:
            return low, listed
        tail = self.read([PartitionRange(topic, partition, listed - 1)], label=None)
        return low, max([listed, *(record.offset + 1 for record in tail)])

    def whole(self, topics: Sequence[str]) -> list[PartitionRange]:
        """Every partition of ``topics`` from its first record to its end when the read starts."""
        return [
            PartitionRange(topic, partition, OFFSET_BEGINNING)
            for topic, partitions in self.partitions(topics).items()
            for partition in partitions
        ]

    def read(
        self, ranges: Sequence[PartitionRange], label: str | None = "reading"
    ) -> list[TopicRecord]:
        """The records of ``ranges``, in offset order per partition (``label``: the progress
        bar's, ``None`` for none).

        A partition is done at the end of its range (a range without an end ends at the high
        watermark of the first fetch response) or when the consumer reaches the partition's end
        (what ``read_committed`` may read now). Fails with ``OperatorError`` when nothing
        arrives for ``timeout_s`` seconds while records are still expected.
        """
        pending = {(r.topic, r.partition): r for r in ranges if r.size is None or r.size > 0}
        if not pending:
            return []
        consumer = self._consumer
        consumer.client.assign(
            [TopicPartition(topic, part, item.start) for (topic, part), item in pending.items()]
        )
        ends = {where: item.end for where, item in pending.items()}
        records: list[TopicRecord] = []
        sizes = [item.size for item in pending.values()]
        total = None if None in sizes else sum(size or 0 for size in sizes)
        idle_deadline = time.monotonic() + self._target.timeout_s
        with progress(label or "", 0 if label is None else total) as advance:
            while pending:
                batch = consumer.consume(_READ_BATCH, timeout=_POLL_S)
                if not batch:
                    if time.monotonic() > idle_deadline:
                        waiting = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
                        raise self._target.unreachable(f"still reading {waiting}")
                    continue
                idle_deadline = time.monotonic() + self._target.timeout_s
                taken = self._take(batch, pending, ends)
                records.extend(taken)
                advance(len(taken))
        consumer.client.unassign()
        return records

    def _take(
        self,
        batch: Sequence[Any],
        pending: dict[tuple[str, int], PartitionRange],
        ends: dict[tuple[str, int], int | None],
    ) -> list[TopicRecord]:
        taken: list[TopicRecord] = []
        for message in batch:
            where = (str(message.topic()), int(message.partition()))
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.pop(where, None)
                elif error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise OperatorError(f"reading {where[0]}[{where[1]}]: {error.str()}")
                continue
            span = pending.get(where)
            offset = int(message.offset())
            if span is None or offset < span.start:
                continue
            end = ends.get(where)
            if end is None:  # the high watermark of the fetch that brought this record
                marks = self._consumer.get_watermark_offsets(TopicPartition(*where))
                end = ends[where] = marks[1] if marks and marks[1] > offset else None
            if end is not None and offset >= end:
                pending.pop(where, None)
                continue
            taken.append(TopicRecord.of(message))
            if end is not None and offset + 1 >= end:
                pending.pop(where, None)
        return taken

    def follow(self, topics: Sequence[str], *, from_beginning: bool) -> None:
        """Assign every partition of ``topics`` at its end (or its beginning); then :meth:`poll`.

        The end is asked of the broker here, so every record produced after this returns is
        seen.
        """
        assignment: list[Any] = []
        for topic, partitions in self.partitions(topics).items():
            for partition in partitions:
                start = OFFSET_BEGINNING if from_beginning else self.watermarks(topic, partition)[1]
                assignment.append(TopicPartition(topic, partition, start))
        self._consumer.client.assign(assignment)

    def poll(self, timeout_s: float) -> list[TopicRecord]:
        """The records that arrived within ``timeout_s`` (errors and end-of-partition skipped)."""
        batch = self._consumer.consume(_READ_BATCH, timeout=timeout_s)
        return [TopicRecord.of(message) for message in batch if message.error() is None]


def _kafka_detail(err: KafkaException) -> str:
    error = err.args[0] if err.args else None
    return error.str() if isinstance(error, KafkaError) else str(err)


# ---------------------------------------------------------------------------- decoding


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record and the event it holds, or why it holds none."""

    record: TopicRecord
    event: Event | None
    error: str | None = None

    @property
    def event_type(self) -> str:
        """The event's type (the header's for a record that did not decode, else ``?``)."""
        if self.event is not None:
            return self.event.event_type
        return self.record.header("event_type") or "?"

    @property
    def correlation_id(self) -> str | None:
        """The workflow id (the event's, else the record's ``correlation_id`` header)."""
        if self.event is not None:
            return str(self.event.correlation_id)
        return self.record.header("correlation_id")

    @property
    def event_id(self) -> str | None:
        """The event id (the event's, else the record's ``event_id`` header)."""
        if self.event is not None:
            return str(self.event.event_id)
        return self.record.header("event_id")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description: position, key, ids and the event (or the error)."""
        record = self.record
        document: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp.isoformat() if record.timestamp else None,
            "key": record.key_text,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "causation_id": (
                str(self.event.causation_id)
                if self.event is not None and self.event.causation_id is not None
                else None
            ),
            "event": self.event.model_dump(mode="json") if self.event is not None else None,
            "error": self.error,
        }
        if is_dlq_topic(record.topic):
            document["dead_letter"] = dead_letter_headers(record)
        return document


def dead_letter_headers(record: TopicRecord) -> dict[str, str]:
    """A dead letter's ``dlq.*`` headers without the prefix (reason, error_class, ...)."""
    return {
        name.removeprefix("dlq."): data.decode("utf-8", "replace")
        for name, data in record.headers
        if name.startswith("dlq.")
    }


class Decoder:
    """Avro decoding through the registry; ``OperatorError`` when the registry is unreachable."""

    def __init__(self, target: Target) -> None:
        self._url = target.registry.url
        config = {
            **target.registry.client_config(),
            "timeout": target.timeout_s,
            "max.retries": 1,
            "retries.wait.ms": 200,
        }
        self._serde = EventSerde(SchemaRegistryClient(config))

    def decode(self, record: TopicRecord) -> Decoded:
        """The record's event, or the reason it did not decode (never raised)."""
        try:
            event = self._serde.deserialize(record.original_topic, record.value)
        except DeserializationError as err:
            return Decoded(record, None, f"{err.reason}: {err}")
        except RegistryUnavailableError as err:
            raise OperatorError(
                f"no schema registry answered at {self._url} ({err}); "
                "check ALCHEMISER_REGISTRY__URL or --registry"
            ) from None
        return Decoded(record, event)


# ---------------------------------------------------------------------------- producing


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to produce, and the record it copies (``source``)."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    source: TopicRecord


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a produced record landed."""

    outgoing: Outgoing
    partition: int
    offset: int

    @property
    def position(self) -> str:
        """``topic[partition]@offset`` of the new record."""
        return f"{self.outgoing.topic}[{self.partition}]@{self.offset}"


def reproduce(target: Target, records: Sequence[Outgoing], label: str) -> list[Delivered]:
    """Produce ``records`` in order (idempotent producer, ``acks=all``) and wait for them.

    Records with a ``partition`` go to that partition, the others where their key hashes.
    Raises :class:`DeliveryError` naming how many landed when any failed or the wait ran out
    (librdkafka's message timeout: the larger of ``timeout_s`` and 30 s).
    """
    if not records:
        return []
    wait_s = max(target.timeout_s, 30.0)
    producer = KafkaProducer(
        target.kafka,
        overrides={**QUIET_CLIENT, "message.timeout.ms": int(wait_s * 1000)},
        logger=_QUIET_LOGGER,
    )
    delivered: list[Delivered | None] = [None] * len(records)
    errors: list[str] = []

    def on_delivery_for(index: int) -> Callable[[Any, Any], None]:
        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                delivered[index] = Delivered(
                    records[index], int(message.partition()), int(message.offset())
                )

        return on_delivery

    try:
        with progress(label, len(records)) as advance:
            for index, item in enumerate(records):
                producer.produce(
                    item.topic,
                    value=item.value,
                    key=item.key,
                    headers=item.headers,
                    partition=item.partition,
                    on_delivery=on_delivery_for(index),
                )
                advance(producer.poll(0))
            deadline = time.monotonic() + wait_s + 5.0
            while producer.flush(_POLL_S) and time.monotonic() < deadline:
                pass
            remaining = producer.flush(0)
    except KafkaException as err:
        raise target.unreachable(_kafka_detail(err)) from None
    except BufferError:
        remaining = len(records)
    finally:
        producer.close(0)
    landed = [item for item in delivered if item is not None]
    if errors or remaining or len(landed) != len(records):
        detail = errors[0] if errors else f"no delivery report within {wait_s:g} s"
        raise DeliveryError(
            f"{len(landed)} of {len(records)} record(s) produced at {target.bootstrap_servers}; "
            f"{detail}"
        )
    return landed


# ---------------------------------------------------------------------------- presenting


def format_time(moment: datetime | None) -> str:
    """``2025-03-14 19:45:00.123`` (UTC), or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_delay(seconds: float | None) -> str:
    """``+0.250s``, ``+12.5s``, ``+3m04s``, ``+2h01m``, or ``-``."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else "+"
    value = abs(seconds)
    if value < 10:
        return f"{sign}{value:.3f}s"
    if value < 60:
        return f"{sign}{value:.1f}s"
    if value < 3600:
        return f"{sign}{int(value // 60)}m{int(value % 60):02d}s"
    return f"{sign}{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def short_id(value: object) -> str:
    """The first 8 characters of an id (``-`` for none)."""
    return "-" if value is None else str(value)[:_SHORT_ID]


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _percent(value: Decimal) -> str:
    return f"{value * 100:.1f}%"


def summarize(event: Event) -> str:
    """One short line describing what ``event`` says."""
    if isinstance(event, WorkflowStarted):
        session = event.as_of.isoformat() if event.as_of else "latest data"
        return (
            f"account {event.account_id}, as of {session}, {event.mode.value}, "
            f"requested by {event.requested_by}"
        )
    if isinstance(event, SignalGenerated):
        targets = ", ".join(
            f"{item.symbol} {_percent(item.weight)}" for item in event.consolidated_portfolio[:5]
        )
        more = len(event.consolidated_portfolio) - 5
        failed = sum(
            1 for item in event.strategy_allocations if item.status is AllocationStatus.FAILED
        )
        return (
            f"{len(event.signals)} signal(s) -> {targets or 'no targets'}"
            + (f" (+{more} more)" if more > 0 else "")
            + (f"; {failed} strategy(ies) failed" if failed else "")
        )
    if isinstance(event, RebalancePlanned):
        plan = event.plan
        counts = {
            action: sum(1 for item in plan.items if item.action is action) for action in PlanAction
        }
        return (
            f"plan {plan.plan_id}: {counts[PlanAction.BUY]} buy, {counts[PlanAction.SELL]} sell, "
            f"{counts[PlanAction.HOLD]} hold; trade {_money(plan.total_trade_value)} of "
            f"{_money(plan.total_portfolio_value)}"
        )
    if isinstance(event, TradeExecuted):
        return (
            f"{event.orders_succeeded}/{event.orders_placed} order(s) succeeded, traded "
            f"{_money(event.total_trade_value)}" + ("" if event.success else " (not all)")
        )
    if isinstance(event, WorkflowCompleted):
        summary = event.summary
        return (
            f"completed in {event.duration_ms} ms: {summary.orders_succeeded}/"
            f"{summary.orders_placed} order(s), bought {', '.join(summary.symbols_bought) or '-'}"
            f", sold {', '.join(summary.symbols_sold) or '-'}"
        )
    if isinstance(event, WorkflowFailed):
        return f"failed at {event.failure_step.value}: {event.reason}"
    return event.event_type


def dead_letter_summary(record: TopicRecord) -> str:
    """``dead letter (reason, ErrorClass) from topic[p]@o: message``."""
    headers = dead_letter_headers(record)
    origin = (
        f"{headers.get('original_topic', '?')}[{headers.get('original_partition', '?')}]"
        f"@{headers.get('original_offset', '?')}"
    )
    message = headers.get("error_message", "")
    return (
        f"dead letter ({headers.get('reason', '?')}, {headers.get('error_class', '?')}) "
        f"from {origin}" + (f": {message}" if message else "")
    )


def print_json(document: object) -> None:
    """One JSON document on standard output (``--json``: nothing else goes there)."""
    typer.echo(json.dumps(document, sort_keys=True, default=str))
