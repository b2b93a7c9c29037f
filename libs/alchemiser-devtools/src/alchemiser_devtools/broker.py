"""Pytest fixtures: a Kafka-compatible broker for integration tests.

The session's broker is the first that applies:

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (a real Kafka someone else runs);
2. Kafka in a container (testcontainers) when a Docker daemon answers;
3. the embedded tansu broker (:class:`~alchemiser_devtools.embedded.EmbeddedBroker`).

``ALCHEMISER_TEST_BROKER=embedded`` (or ``testcontainers``) forces a choice. tansu does not
honour transactional isolation; tests that need it check ``kafka_broker.honours_transactions``
and skip otherwise.

Fixtures: ``kafka_broker`` and ``kafka_bootstrap_servers`` (session), ``kafka_settings``
(session; tansu-friendly group timing, ``fetch.wait.max.ms=10`` for low latency),
``kafka_topic_factory`` and ``kafka_group_id`` (per test, unique names).
"""

from __future__ import annotations

import importlib
import os
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import pytest

from alchemiser_common.kafka.clients import KafkaAdmin
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.embedded import EmbeddedBroker

__all__ = [
    "BOOTSTRAP_ENV",
    "BROKER_CHOICE_ENV",
    "TEST_FETCH_WAIT_MAX_MS",
    "BrokerKind",
    "KafkaTestBroker",
    "TopicFactory",
    "docker_available",
    "kafka_bootstrap_servers",
    "kafka_broker",
    "kafka_group_id",
    "kafka_settings",
    "kafka_topic_factory",
    "select_broker_kind",
]

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
BROKER_CHOICE_ENV = "ALCHEMISER_TEST_BROKER"
KAFKA_IMAGE_ENV = "ALCHEMISER_TEST_KAFKA_IMAGE"
_DEFAULT_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
# tansu's end-to-end latency is about fetch.wait.max.ms (it cannot wake a long poll early).
TEST_FETCH_WAIT_MAX_MS = 10
# The group timing tansu handles well (measured on tansu 0.6); joining still takes ~3 s.
_TEST_SESSION_TIMEOUT_MS = 6000
_TEST_HEARTBEAT_INTERVAL_MS = 1000
_DOCKER_PING_TIMEOUT_S = 3
_TOPIC_TIMEOUT_S = 10.0


class BrokerKind(StrEnum):
    """Where the test broker comes from."""

    EXTERNAL = "external"
    TESTCONTAINERS = "testcontainers"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class KafkaTestBroker:
    """The session's broker."""

    bootstrap_servers: str
    kind: BrokerKind

    @property
    def honours_transactions(self) -> bool:
        """Whether aborted records are hidden from ``read_committed`` consumers (not tansu)."""
        return self.kind is not BrokerKind.EMBEDDED


class TopicFactory(Protocol):
    """Creates a uniquely named topic and returns its name."""

    def __call__(self, prefix: str = "test", *, partitions: int = 1) -> str:
        """Create ``<prefix>.<random>`` with ``partitions`` partitions."""
        ...


def docker_available() -> bool:
    """Whether a Docker daemon answers a ping (raises nothing)."""
    try:
        docker = importlib.import_module("docker")
        client: Any = docker.from_env(timeout=_DOCKER_PING_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no daemon: all mean "no Docker"
        return False


def select_broker_kind(
    env: Mapping[str, str], docker_ok: Callable[[], bool] = docker_available
) -> BrokerKind:
    """Pick the broker for this session from the environment (see the module docstring)."""
    forced = env.get(BROKER_CHOICE_ENV, "").strip().lower()
    if forced:
        try:
            return BrokerKind(forced)
        except ValueError:
            choices = ", ".join(kind.value for kind in BrokerKind)
            raise pytest.UsageError(
                f"{BROKER_CHOICE_ENV}={forced!r}; use one of {choices}"
            ) from None
    if env.get(BOOTSTRAP_ENV, "").strip():
        return BrokerKind.EXTERNAL
    if docker_ok():
        return BrokerKind.TESTCONTAINERS
    return BrokerKind.EMBEDDED


@contextmanager
def _kafka_container(image: str) -> Iterator[str]:
    try:
        module = importlib.import_module("testcontainers.community.kafka")
    except ImportError:
        module = importlib.import_module("testcontainers.kafka")
    with module.KafkaContainer(image).with_kraft() as container:
        yield str(container.get_bootstrap_server())


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaTestBroker]:
    """A Kafka-compatible broker for the whole test session."""
    kind = select_broker_kind(os.environ)
    if kind is BrokerKind.EXTERNAL:
        servers = os.environ.get(BOOTSTRAP_ENV, "").strip()
        if not servers:
            raise pytest.UsageError(f"{BROKER_CHOICE_ENV}=external needs {BOOTSTRAP_ENV}")
        yield KafkaTestBroker(servers, kind)
    elif kind is BrokerKind.TESTCONTAINERS:
        with _kafka_container(os.environ.get(KAFKA_IMAGE_ENV, _DEFAULT_KAFKA_IMAGE)) as servers:
            yield KafkaTestBroker(servers, kind)
    else:
        with EmbeddedBroker() as broker:
            yield KafkaTestBroker(broker.bootstrap_servers, kind)


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(kafka_broker: KafkaTestBroker) -> str:
    """``host:port`` of the session's broker."""
    return kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap_servers: str) -> KafkaSettings:
    """``KafkaSettings`` for the session's broker, tuned for fast tests."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap_servers,
        session_timeout_ms=_TEST_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=_TEST_HEARTBEAT_INTERVAL_MS,
        fetch_wait_max_ms=TEST_FETCH_WAIT_MAX_MS,
    )


@pytest.fixture
def kafka_group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id no other test uses."""
    return f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_topic_factory(kafka_settings: KafkaSettings) -> Iterator[TopicFactory]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    admin = KafkaAdmin(kafka_settings)
    created: list[str] = []

    def make(prefix: str = "test", *, partitions: int = 1) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics(
            [name], partitions=partitions, replication_factor=1, timeout=_TOPIC_TIMEOUT_S
        )
        futures[name].result(timeout=_TOPIC_TIMEOUT_S)
        created.append(name)
        return name

    yield make
    if created:
        try:
            for future in admin.delete_topics(created, timeout=_TOPIC_TIMEOUT_S).values():
                future.result(timeout=_TOPIC_TIMEOUT_S)
        except Exception as err:  # best effort: unique names never collide anyway
            warnings.warn(f"test topics {created} were not deleted: {err}", stacklevel=1)
