"""Pytest fixtures: databases for tests.

* ``postgres_server_url`` (session): the server from ``ALCHEMISER_TEST_POSTGRES_URL``
  (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), checked reachable. When it
  is not, the test is skipped, unless ``CI=true``: then it fails, so CI never silently skips.
* ``postgres_url`` (module): a fresh, uniquely named database on that server, dropped after
  the module, so test modules (and parallel runs) never see each other's rows.
* ``sqlite_url`` (function): an SQLite file under the test's ``tmp_path`` (in a folder that
  does not exist yet; ``create_engine_from_url`` creates it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = [
    "DEFAULT_TEST_POSTGRES_URL",
    "TEST_POSTGRES_URL_ENV",
    "postgres_server_url",
    "postgres_url",
    "sqlite_url",
]

TEST_POSTGRES_URL_ENV = "ALCHEMISER_TEST_POSTGRES_URL"
DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_CONNECT_TIMEOUT_SECONDS = 3  # a local server answers at once; do not stall the suite


def _libpq_url(url: URL) -> str:
    """The SQLAlchemy URL as a plain ``postgresql://`` URI for psycopg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        _libpq_url(url), autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
    )


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the test PostgreSQL server's base database (skip or, under CI, fail if down)."""
    raw = os.environ.get(TEST_POSTGRES_URL_ENV) or DEFAULT_TEST_POSTGRES_URL
    url = make_url(raw)
    if url.drivername in {"postgres", "postgresql"}:
        url = url.set(drivername="postgresql+psycopg")
    try:
        with _admin_connection(url) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as err:
        reason = (
            f"PostgreSQL unreachable at {url.render_as_string(hide_password=True)} "
            f"(set {TEST_POSTGRES_URL_ENV}): {err}"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip")
        pytest.skip(reason)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (``postgresql+psycopg://`` URL)."""
    server = make_url(postgres_server_url)
    name = f"alchemiser_test_{uuid.uuid4().hex[:16]}"
    with _admin_connection(server) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection(server) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite database file for this test (its folder is created on first connect)."""
    return f"sqlite:///{tmp_path / 'db' / 'alchemiser.sqlite'}"
