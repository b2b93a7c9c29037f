"""Pytest fixtures: a private broker per test, the registry with the schemas, a process harness.

* ``registered_registry`` (module): the session's registry URL with every schema registered.
* ``pipeline`` (function): a fresh embedded broker with every topic, and a
  :class:`~alchemiser_devtools.harness.Pipeline` over it, the registry and the module's
  PostgreSQL database; every process it started is killed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.topics import create_topics
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.harness import Pipeline

__all__ = ["pipeline", "registered_registry"]


@pytest.fixture(scope="module")
def registered_registry(registry_url: str) -> str:
    """The session's registry with every schema of the catalog registered (idempotent)."""
    register_all(registry_url, SchemaCatalog.discover())
    return registry_url


@pytest.fixture
def pipeline(registered_registry: str, postgres_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    """A private embedded broker with every topic (one partition each) and a harness over it."""
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        create_topics(
            {"bootstrap.servers": broker.bootstrap_servers}, partitions=1, replication_factor=1
        )
        harness = Pipeline(broker.bootstrap_servers, registered_registry, postgres_url, tmp_path)
        try:
            yield harness
        finally:
            harness.stop_all()
