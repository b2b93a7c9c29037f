"""Engine creation, transient-error rules, header encoding and the inbox value types."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from alchemiser_common.db import (
    create_engine_from_url,
    fixed_values,
    is_transient_database_error,
    normalize_database_url,
)
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.inbox import InboxStoreError, StoredOutput, content_hash
from alchemiser_common.inbox.schema import decode_headers, encode_headers


@pytest.mark.parametrize(
    ("given_url", "driver", "database"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+psycopg", "app"),
        ("postgres://u@db/app", "postgresql+psycopg", "app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg", "app"),
        ("sqlite:////var/lib/alchemiser/app.db", "sqlite", "/var/lib/alchemiser/app.db"),
    ],
)
def test_normalize_database_url_when_supported_scheme_then_driver_pinned(
    given_url: str, driver: str, database: str
) -> None:
    url = normalize_database_url(given_url)
    assert (url.drivername, url.database) == (driver, database)


@pytest.mark.parametrize("bad_url", ["mysql://u@db/app", "not a url", "postgresql+psycopg2://x/y"])
def test_normalize_database_url_when_unsupported_then_configuration_error(bad_url: str) -> None:
    with pytest.raises(ConfigurationError):
        normalize_database_url(bad_url)


def test_normalize_database_url_when_password_then_error_message_hides_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_database_url("mysql://user:s3cret@db/app")
    assert "s3cret" not in str(caught.value)


def test_create_engine_when_sqlite_file_then_folder_created_and_pragmas_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "deeper" / "app.sqlite"
    engine = create_engine_from_url(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        assert path.exists()
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 30_000,
            "synchronous": 2,
        }
    finally:
        engine.dispose()


def test_create_engine_when_postgres_url_then_psycopg_with_pre_ping() -> None:
    engine = create_engine_from_url("postgresql://postgres@127.0.0.1:1/none")
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping
    finally:
        engine.dispose()


def test_sqlite_transaction_when_another_writer_active_then_begin_waits_for_lock(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'lock.sqlite'}"
    engine = create_engine_from_url(url, sqlite_busy_timeout_seconds=0.1)
    try:
        with engine.begin() as setup:
            setup.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as holder, engine.connect() as contender:
            holder.begin()  # BEGIN IMMEDIATE: holds the write lock before any write
            with pytest.raises(sa_exc.OperationalError) as caught:
                contender.begin()
            assert is_transient_database_error(caught.value)
            reader = contender.execution_options(sqlite_begin="DEFERRED")
            assert reader.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        engine.dispose()


def test_fixed_values_when_in_a_prebuilt_statement_then_compiled_once_and_matching_rows() -> None:
    metadata = sa.MetaData()
    table = sa.Table("t", metadata, sa.Column("k", sa.String()), sa.Column("state", sa.String()))
    engine = create_engine_from_url("sqlite://")
    metadata.create_all(engine)
    query = sa.select(table.c.k).where(table.c.state.in_(fixed_values(["new", "held"])))
    negated = sa.select(table.c.k).where(table.c.state.not_in(fixed_values(["new", "held"])))
    for dialect in (engine.dialect, sa.dialects.postgresql.dialect()):
        assert "POSTCOMPILE" not in str(query.compile(dialect=dialect))  # no re-rendering
    with engine.begin() as connection:
        rows = [("a", "new"), ("b", "filled"), ("c", "held"), ("d", "canceled")]
        connection.execute(table.insert(), [{"k": k, "state": state} for k, state in rows])
        assert sorted(connection.execute(query).scalars()) == ["a", "c"]
        assert sorted(connection.execute(negated).scalars()) == ["b", "d"]


def test_is_transient_when_sqlite_schema_error_then_false(tmp_path: Path) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with pytest.raises(sa_exc.OperationalError) as caught, engine.connect() as connection:
            connection.execute(sa.text("SELECT * FROM no_such_table"))
        assert not is_transient_database_error(caught.value)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.OperationalError("connection refused"), True),
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.QueryCanceled("statement timeout"), True),
        (psycopg.errors.TooManyConnections("too many clients"), True),
        (psycopg.errors.LockNotAvailable("lock timeout"), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
        (psycopg.errors.ProgramLimitExceeded("too many columns"), False),
        (psycopg.errors.DataError("invalid input"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_is_transient_when_driver_error_then_classified_by_sqlstate(
    error: Exception, transient: bool
) -> None:
    assert is_transient_database_error(error) is transient
    wrapped = sa_exc.DBAPIError.instance("SELECT 1", {}, error, psycopg.Error)
    assert is_transient_database_error(wrapped) is transient


def test_is_transient_when_connection_invalidated_or_pool_timeout_then_true() -> None:
    invalidated = sa_exc.DBAPIError.instance(
        "SELECT 1",
        {},
        psycopg.errors.UndefinedTable("x"),
        psycopg.Error,
        connection_invalidated=True,
    )
    assert is_transient_database_error(invalidated)
    assert is_transient_database_error(sa_exc.TimeoutError("pool exhausted"))


def test_is_transient_when_sqlite_locked_then_true(tmp_path: Path) -> None:
    path = tmp_path / "raw.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        contender = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError) as caught:
            contender.execute("BEGIN IMMEDIATE")
        contender.close()
    finally:
        holder.rollback()
        holder.close()
    assert is_transient_database_error(caught.value)


header_lists = st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=64)), max_size=8).map(
    tuple
)


@given(headers=header_lists)
def test_encode_headers_when_any_bytes_then_round_trip_exactly(
    headers: tuple[tuple[str, bytes], ...],
) -> None:
    assert decode_headers(encode_headers(headers)) == headers


@pytest.mark.parametrize("corrupt", ["not json", '[["a", "***"]]', '[["a"]]', "[[1, 2]]"])
def test_decode_headers_when_corrupt_then_store_error(corrupt: str) -> None:
    with pytest.raises(InboxStoreError):
        decode_headers(corrupt)


@pytest.mark.parametrize(
    "fields",
    [
        {"value": "text"},
        {"key": "text"},
        {"headers": (("name", "text"),)},
        {"headers": ((b"name", b"v"),)},
    ],
)
def test_stored_output_when_not_bytes_then_type_error(fields: dict[str, object]) -> None:
    arguments: dict[str, object] = {"topic": "t", "key": None, "value": b"v", **fields}
    with pytest.raises(TypeError):
        StoredOutput(**arguments)  # type: ignore[arg-type]


def test_content_hash_when_bytes_differ_then_hashes_differ() -> None:
    assert content_hash(b"a") == content_hash(b"a")
    assert content_hash(b"a") != content_hash(b"b")
    assert content_hash(b"a").startswith("sha256:")
