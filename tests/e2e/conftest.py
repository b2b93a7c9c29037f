"""End-to-end fixtures: the session's broker, the registry with schemas, per-service databases
(and the paper exchange's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from alchemiser_common.topics import create_topics


@pytest.fixture(scope="module")
def e2e_broker(kafka_bootstrap_servers: str) -> str:
    """The session broker (external, testcontainers or embedded) with every topic created."""
    create_topics(
        {"bootstrap.servers": kafka_bootstrap_servers}, partitions=1, replication_factor=1
    )
    return kafka_bootstrap_servers


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
