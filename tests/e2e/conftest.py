"""End-to-end fixtures: the broker (the session's, or one of the module's own), the registry
with schemas, per-service databases (and the paper exchange's), and whole trading systems as
processes (:class:`~alchemiser_devtools.system.TradingSystem`).

``ALCHEMISER_E2E_FULL=1`` (``make e2e-full``) runs every scenario with its full counts; without
it (``make test``, ``make e2e``) the scenarios run with their quick counts (:func:`scale`).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from alchemiser_common.topics import create_topics
from alchemiser_devtools.broker import BrokerKind, KafkaTestBroker
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.system import TradingSystem

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "services" / "strategy" / "data" / "demo"
FULL = os.environ.get("ALCHEMISER_E2E_FULL", "").strip().lower() in {"1", "true", "yes"}


def scale(quick: int, full: int) -> int:
    """A scenario's count: ``full`` under ``make e2e-full``, else ``quick``."""
    return full if FULL else quick


def _shared_broker(
    kafka_broker: KafkaTestBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The session broker with every topic created; an external one is held under a lock.

    Every pytest-xdist worker has its own testcontainers or embedded broker, but an external
    one (``KAFKA_BOOTSTRAP_SERVERS``) is shared by all of them: then the module holds a lock,
    shared by the workers, for as long as its services run, so two modules' services never
    consume each other's workflows.
    """
    servers = kafka_broker.bootstrap_servers
    create_topics({"bootstrap.servers": servers}, partitions=1, replication_factor=1)
    if kafka_broker.kind is not BrokerKind.EXTERNAL:
        yield servers
        return
    # the workers' base temporary directories share this parent (the run's own without xdist)
    lock_path = tmp_path_factory.getbasetemp().parent / "e2e-external-broker.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield servers
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def e2e_broker(
    kafka_broker: KafkaTestBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The session broker (external, testcontainers or embedded) with every topic created."""
    yield from _shared_broker(kafka_broker, tmp_path_factory)


@pytest.fixture(scope="module")
def private_broker(
    kafka_broker: KafkaTestBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A broker of this module's own (with the embedded broker), every topic created.

    The services consume the catalog's fixed topics and every account is its own deployment:
    on a broker shared with other modules they would consume other accounts' workflows (and
    fail them as ``account_mismatch``). An external or testcontainers broker is shared, as
    :func:`e2e_broker`.
    """
    if kafka_broker.kind is not BrokerKind.EMBEDDED:
        yield from _shared_broker(kafka_broker, tmp_path_factory)
        return
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as broker:
        servers = broker.bootstrap_servers
        create_topics({"bootstrap.servers": servers}, partitions=1, replication_factor=1)
        yield servers


@pytest.fixture(scope="module")
def databases(postgres_server_url: str) -> Iterator[dict[str, str]]:
    """One fresh PostgreSQL database per service plus the paper exchange's, dropped after."""
    with _fresh_databases(postgres_server_url) as urls:
        yield urls


class _fresh_databases:  # noqa: N801 - used as a context manager, read as a phrase
    """Create one database per role on the server; drop them all on exit."""

    ROLES = ("strategy", "portfolio", "execution", "exchange")

    def __init__(self, server_url: str) -> None:
        self.base = make_url(server_url)
        self.admin = self.base.set(drivername="postgresql").render_as_string(hide_password=False)
        self.names: list[str] = []

    def create(self) -> dict[str, str]:
        names = {role: f"e2e_{role}_{uuid.uuid4().hex[:8]}" for role in self.ROLES}
        with psycopg.connect(self.admin, autocommit=True) as connection:
            for name in names.values():
                connection.execute(f'CREATE DATABASE "{name}"')
        self.names.extend(names.values())
        return {
            role: self.base.set(database=name).render_as_string(hide_password=False)
            for role, name in names.items()
        }

    def __enter__(self) -> dict[str, str]:
        return self.create()

    def __exit__(self, *_exc: object) -> None:
        with psycopg.connect(self.admin, autocommit=True) as connection:
            for name in self.names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SystemFactory = Callable[..., TradingSystem]


@contextmanager
def running_system(
    bootstrap: str, server_url: str, workdir: Path, **kwargs: Any
) -> Iterator[TradingSystem]:
    """A started :class:`TradingSystem` on fresh databases (``kwargs`` go to it), stopped and
    its databases dropped on exit: for a module's own system."""
    kwargs.setdefault("dataset_dir", DATASET)
    with _fresh_databases(server_url) as databases:
        trading = TradingSystem(bootstrap, workdir, databases, **kwargs)
        try:
            yield trading.start()
        finally:
            trading.stop()


@pytest.fixture
def make_system(postgres_server_url: str, tmp_path: Path) -> Iterator[SystemFactory]:
    """Start :class:`TradingSystem` s, each on fresh PostgreSQL databases: ``make(bootstrap,
    **kwargs)`` (keyword arguments go to ``TradingSystem``). All are stopped and their
    databases dropped after the test."""
    started: list[TradingSystem] = []
    fresh = _fresh_databases(postgres_server_url)

    def make(bootstrap: str, **kwargs: Any) -> TradingSystem:
        kwargs.setdefault("dataset_dir", DATASET)
        workdir = tmp_path / f"system-{len(started)}"
        system = TradingSystem(bootstrap, workdir, fresh.create(), **kwargs)
        started.append(system)
        return system.start()

    with fresh:
        try:
            yield make
        finally:
            for system in started:
                system.stop()
