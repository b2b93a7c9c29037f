"""The ledger's databases for tests: an SQLite file, or a PostgreSQL database emptied first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alchemiser_common.db import create_engine_from_url
from alchemiser_ledger.adapters.schema import LEDGER_VERSION_TABLE, metadata


def _empty(url: str) -> None:
    """Drop the ledger's tables and version table (a module shares one PostgreSQL database)."""
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {LEDGER_VERSION_TABLE}"))
            connection.execute(sa.text("DROP TABLE IF EXISTS inbox_output"))
            connection.execute(sa.text("DROP TABLE IF EXISTS inbox"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for one test: an SQLite file, or the module's PostgreSQL database, empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _empty(url)
    return url


@pytest.fixture
def ledger_engine(ledger_url: str) -> Iterator[Engine]:
    """An engine on :func:`ledger_url` (disposed after the test)."""
    engine = create_engine_from_url(ledger_url)
    yield engine
    engine.dispose()
