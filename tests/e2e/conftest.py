"""End-to-end fixtures: the session's broker, the registry with schemas, per-service databases
(and the paper exchange's)."""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from alchemiser_common.topics import create_topics
from alchemiser_devtools.broker import BrokerKind, KafkaTestBroker


@pytest.fixture(scope="module")
def e2e_broker(
    kafka_broker: KafkaTestBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The session broker (external, testcontainers or embedded) with every topic created.

    Each module's services consume the catalog's fixed topics. Every pytest-xdist worker has
    its own testcontainers or embedded broker, but an external one (``KAFKA_BOOTSTRAP_SERVERS``)
    is shared by all of them: then the module holds a lock, shared by the workers, for as long
    as its services run, so two modules' services never consume each other's workflows.
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
def databases(postgres_server_url: str) -> Iterator[dict[str, str]]:
    """One fresh PostgreSQL database per service plus the paper exchange's, dropped after."""
    base = make_url(postgres_server_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    names = {
        role: f"e2e_{role}_{uuid.uuid4().hex[:8]}"
        for role in ("strategy", "portfolio", "execution", "exchange")
    }
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in names.values():
            connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            role: base.set(database=name).render_as_string(hide_password=False)
            for role, name in names.items()
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in names.values():
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
