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

For fault tests, whatever the session's broker: ``s3_emulator`` (session; ``moto_server``)
and ``restartable_broker`` (per test): a private tansu broker on S3 storage in the emulator
that can be killed (SIGKILL) and started again on the same port with its topics, records
and committed offsets. Both skip when ``moto_server`` cannot start, unless ``CI=true``: then
they fail, so CI never silently skips.
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
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest

from alchemiser_common.kafka.clients import KafkaAdmin
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.s3emulator import S3Emulator, S3EmulatorError, S3Storage

__all__ = [
    "BOOTSTRAP_ENV",
    "BROKER_CHOICE_ENV",
    "RESTARTABLE_FETCH_WAIT_MAX_MS",
    "TEST_FETCH_WAIT_MAX_MS",
    "BrokerKind",
    "KafkaTestBroker",
    "RestartableBroker",
    "TopicFactory",
    "docker_available",
    "kafka_bootstrap_servers",
    "kafka_broker",
    "kafka_group_id",
    "kafka_settings",
    "kafka_topic_factory",
    "restartable_broker",
    "s3_emulator",
    "select_broker_kind",
    "skip_or_fail",
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
# On S3 storage every fetch reads the emulator; shorter long polls only add load.
RESTARTABLE_FETCH_WAIT_MAX_MS = 100
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


@dataclass
class RestartableBroker:
    """A private tansu broker on S3 storage: ``kill()`` it, ``start()`` it again, same port.

    ``bootstrap_servers`` does not change across restarts, so clients made before a kill
    reconnect by themselves. ``settings`` suits it (``fetch.wait.max.ms`` =
    :data:`RESTARTABLE_FETCH_WAIT_MAX_MS`).
    """

    broker: EmbeddedBroker
    storage: S3Storage

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``, the same before and after a restart."""
        return self.broker.bootstrap_servers

    @property
    def is_running(self) -> bool:
        """Whether the broker process is alive."""
        return self.broker.is_running

    @property
    def settings(self) -> KafkaSettings:
        """``KafkaSettings`` for this broker: test group timing, 100 ms long polls."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            session_timeout_ms=_TEST_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=_TEST_HEARTBEAT_INTERVAL_MS,
            fetch_wait_max_ms=RESTARTABLE_FETCH_WAIT_MAX_MS,
        )

    def kill(self) -> None:
        """SIGKILL the broker (a crash); the data stays in the emulator."""
        self.broker.kill()

    def start(self) -> None:
        """Start the broker again on the same port and storage (a no-op while running)."""
        if not self.broker.is_running:
            self.broker.start()

    def restart(self, down_s: float = 0.0) -> None:
        """``kill()``, stay down ``down_s`` seconds, ``start()``."""
        self.broker.restart(down_s)


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


def skip_or_fail(reason: str, env: Mapping[str, str] = os.environ) -> NoReturn:
    """Skip the test because a tool is missing, or fail it under ``CI=true``."""
    if env.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip")
    pytest.skip(reason)


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


@pytest.fixture(scope="session")
def s3_emulator() -> Iterator[S3Emulator]:
    """``moto_server`` on a free 127.0.0.1 port for the session (skip, or fail under CI)."""
    emulator = S3Emulator()
    try:
        emulator.start()
    except S3EmulatorError as err:
        skip_or_fail(f"S3 emulator (moto_server) unavailable: {err}")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def restartable_broker(s3_emulator: S3Emulator, tmp_path: Path) -> Iterator[RestartableBroker]:
    """A private tansu broker on a fresh S3 bucket, stopped after the test.

    Its log is ``tmp_path / "tansu-<port>.log"`` (kept by pytest for a failed test).
    """
    storage = s3_emulator.storage()
    broker = EmbeddedBroker(storage=storage, log_dir=tmp_path).start()
    try:
        yield RestartableBroker(broker, storage)
    finally:
        broker.stop()
