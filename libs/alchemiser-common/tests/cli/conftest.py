"""Fixtures of the operator-command tests: the session's broker and registry, a producer, a runner.

The commands read the catalog's fixed topics (``workflow.started.v1``, ...), which other test
modules on the session's broker may write to as well, so every test works with its own
account and workflow ids and looks only at its own records.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner, Result

from alchemiser_common.cli import build_app
from alchemiser_common.events import Event
from alchemiser_common.serde import EventSerde
from alchemiser_common.topics import create_topics


@dataclass(frozen=True)
class Position:
    """Where a produced record landed."""

    topic: str
    partition: int
    offset: int


@dataclass
class Cluster:
    """The session's broker and registry, as the commands see them."""

    bootstrap: str
    registry_url: str

    @property
    def env(self) -> dict[str, str]:
        """The environment of a command pointed at them (80 columns)."""
        return {
            "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "ALCHEMISER_REGISTRY__URL": self.registry_url,
            "COLUMNS": "80",
        }

    @property
    def serde(self) -> EventSerde:
        return EventSerde.from_url(self.registry_url)

    def produce_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> Position:
        """Produce one record and wait for it; where it landed."""
        producer = Producer({"bootstrap.servers": self.bootstrap})
        landed: list[Position] = []

        def on_delivery(error: Any, message: Any) -> None:
            assert error is None, error
            landed.append(Position(message.topic(), message.partition(), message.offset()))

        kwargs: dict[str, Any] = {"value": value, "key": key, "headers": list(headers)}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, on_delivery=on_delivery, **kwargs)
        assert producer.flush(10) == 0
        return landed[0]

    def produce(self, events: Sequence[Event], *, headers: bool = True) -> list[Position]:
        """Produce ``events`` as the runtime does: keyed by account, with the id headers."""
        serde = self.serde
        return [
            self.produce_raw(
                event.TOPIC,
                serde.serialize(event),
                event.account_id.encode(),
                [
                    ("event_type", event.event_type.encode()),
                    ("event_id", str(event.event_id).encode()),
                    ("correlation_id", str(event.correlation_id).encode()),
                ]
                if headers
                else [],
            )
            for event in events
        ]


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap_servers: str, registered_registry: str) -> Cluster:
    """The session's broker with every catalog topic, and the registry with every schema."""
    create_topics(
        {"bootstrap.servers": kafka_bootstrap_servers}, partitions=1, replication_factor=1
    )
    return Cluster(kafka_bootstrap_servers, registered_registry)


@pytest.fixture
def account() -> str:
    """An account no other test uses."""
    return f"T{uuid.uuid4().hex[:11].upper()}"


Run = Callable[..., Result]


@pytest.fixture
def run(cluster: Cluster) -> Run:
    """``run("workflow", "list", ..., input=None, env=None)``: the command in-process."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            build_app(), list(args), input=input, env={**cluster.env, **(env or {})}
        )

    return invoke
