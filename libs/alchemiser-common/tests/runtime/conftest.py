"""Fixtures of the runtime integration tests: a private broker per test, schemas registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alchemiser_common.kafka.embedded import EmbeddedBroker
from alchemiser_common.schemas import SchemaCatalog
from alchemiser_common.schemas.register import register_all
from alchemiser_common.testing.harness import Pipeline
from alchemiser_common.topics import create_topics


@pytest.fixture(scope="module")
def registered_registry(registry_url: str) -> str:
    register_all(registry_url, SchemaCatalog.discover())
    return registry_url


@pytest.fixture
def pipeline(registered_registry: str, postgres_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        create_topics(
            {"bootstrap.servers": broker.bootstrap_servers}, partitions=1, replication_factor=1
        )
        harness = Pipeline(broker.bootstrap_servers, registered_registry, postgres_url, tmp_path)
        try:
            yield harness
        finally:
            harness.stop_all()
