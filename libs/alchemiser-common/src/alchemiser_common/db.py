"""Database plumbing shared by the services: engines, transient-error rules, migrations.

Two back ends are supported: PostgreSQL through psycopg 3 (production and tests) and SQLite
(the embedded default). :func:`create_engine_from_url` builds an engine with the settings
both need; :func:`is_transient_database_error` says which failures are worth retrying;
:func:`upgrade_to_head` runs one Alembic migration tree without an ``alembic.ini``.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeEngine

from alchemiser_common.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "POSTGRES_CONNECT_TIMEOUT_SECONDS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "ExactDecimal",
    "as_utc",
    "create_engine_from_url",
    "fixed_values",
    "insert_ignoring_duplicates",
    "is_transient_database_error",
    "normalize_database_url",
    "outage_as",
    "run_alembic_env",
    "sqlite_engine_is_configured",
    "transaction",
    "upgrade_to",
    "upgrade_to_head",
]

POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
"""How long a new PostgreSQL connection may take: a stuck connect is an outage, not a wait."""

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long an SQLite writer waits for the write lock before failing with "database is locked".

Generous because every transaction starts with ``BEGIN IMMEDIATE`` (writers queue up rather than
fail) and a handler's transaction is short; a wait this long means something is stuck.
"""

_POOL_SIZE = 5
_POOL_MAX_OVERFLOW = 5
_POOL_TIMEOUT_SECONDS = 30
_POOL_RECYCLE_SECONDS = 1800  # below typical proxy / load-balancer idle cut-offs

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg"}

# SQLSTATE classes / codes after which the same statement may well succeed on a retry:
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (admin shutdown from pg_terminate_backend, crash shutdown, cannot connect now, query
# cancelled by statement_timeout), 58 system error (I/O); 55P03 lock_not_available.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_SQLSTATES = frozenset({"55P03"})

# SQLite primary result codes worth retrying: BUSY, LOCKED, NOMEM, IOERR, FULL, PROTOCOL.
# Everything else (SQLITE_ERROR for "no such table" or a syntax error, CANTOPEN for a bad path,
# CONSTRAINT, ...) is a bug or a configuration error.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6, 7, 10, 13, 15})

_SQLITE_BEGIN_OPTION = "sqlite_begin"


def normalize_database_url(url: str | URL) -> URL:
    """Parse ``url`` and pin the driver: ``postgres[ql]://`` becomes ``postgresql+psycopg://``.

    Raises :class:`ConfigurationError` for anything but PostgreSQL (psycopg 3) and SQLite.
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as err:
        raise ConfigurationError(f"invalid database URL: {err}") from err
    if parsed.drivername in _POSTGRES_SCHEMES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        return parsed
    raise ConfigurationError(
        f"unsupported database URL scheme {parsed.drivername!r} "
        f"in {parsed.render_as_string(hide_password=True)}; "
        "use postgresql+psycopg://... or sqlite:///path/to/file.db"
    )


def create_engine_from_url(
    url: str | URL,
    *,
    application_name: str | None = None,
    echo: bool = False,
    sqlite_busy_timeout_seconds: float = SQLITE_BUSY_TIMEOUT_SECONDS,
) -> Engine:
    """Create an engine for PostgreSQL (psycopg 3) or SQLite with production settings.

    PostgreSQL: a bounded pool with pre-ping (a connection killed while idle is replaced, not
    handed out) and recycling, a connect timeout and ``application_name``.

    SQLite: the file's folder is created; every connection uses WAL, ``synchronous=FULL``
    (a commit survives power loss), foreign keys and a busy timeout; transactions start with
    ``BEGIN IMMEDIATE`` so concurrent writers queue on the write lock instead of failing or
    deadlocking half-way (pass the execution option ``sqlite_begin="DEFERRED"`` on a
    connection to opt out for pure reads). ``sqlite://`` (memory) shares one connection and
    is for tests only.
    """
    parsed = normalize_database_url(url)
    if parsed.drivername == "postgresql+psycopg":
        connect_args: dict[str, Any] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        if application_name:
            connect_args["application_name"] = application_name
        return sa.create_engine(
            parsed,
            echo=echo,
            pool_size=_POOL_SIZE,
            max_overflow=_POOL_MAX_OVERFLOW,
            pool_timeout=_POOL_TIMEOUT_SECONDS,
            pool_recycle=_POOL_RECYCLE_SECONDS,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    return _create_sqlite_engine(parsed, echo=echo, busy_timeout=sqlite_busy_timeout_seconds)


def _create_sqlite_engine(url: URL, *, echo: bool, busy_timeout: float) -> Engine:
    database = url.database or ""
    in_memory = database in {"", ":memory:"} or database.startswith("file::memory:")
    if in_memory:
        engine = sa.create_engine(
            url,
            echo=echo,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
        )
    else:
        Path(database).expanduser().absolute().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            echo=echo,
            pool_size=_POOL_SIZE,
            max_overflow=_POOL_MAX_OVERFLOW,
            pool_timeout=_POOL_TIMEOUT_SECONDS,
            connect_args={"timeout": busy_timeout},
        )
    busy_timeout_ms = int(busy_timeout * 1000)

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily and
        # DEFERRED); the "begin" listener below emits the BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "IMMEDIATE")
    if mode not in {"IMMEDIATE", "DEFERRED", "EXCLUSIVE"}:
        raise ConfigurationError(f"invalid {_SQLITE_BEGIN_OPTION} execution option {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def sqlite_engine_is_configured(engine: Engine) -> bool:
    """Whether ``engine`` came from :func:`create_engine_from_url` (explicit ``BEGIN``)."""
    return event.contains(engine, "begin", _sqlite_begin)


def is_transient_database_error(error: BaseException) -> bool:
    """Whether retrying the unit of work may succeed (outage), as opposed to a bug.

    Transient: the pool timing out, a connection SQLAlchemy had to invalidate (lost, killed,
    reset), any psycopg ``OperationalError`` without SQLSTATE (connection refused or lost) or
    with a SQLSTATE of class 08, 40 (serialization failure, deadlock), 53, 57 (admin
    shutdown, statement timeout), 58 or 55P03; SQLite BUSY/LOCKED ("database is locked"),
    NOMEM, IOERR, FULL and PROTOCOL. Anything else (integrity and programming errors, a
    missing table, a bad path) is not transient. Accepts SQLAlchemy-wrapped and raw
    driver exceptions.
    """
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return _is_transient_driver_error(error.orig)
    return _is_transient_driver_error(error)


def _is_transient_driver_error(error: BaseException | None) -> bool:
    if isinstance(error, psycopg.Error):
        sqlstate = error.sqlstate
        if sqlstate is None:
            return isinstance(error, psycopg.OperationalError)
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _TRANSIENT_SQLITE_CODES
    return False


def _advisory_lock_key(version_table: str) -> int:
    digest = hashlib.sha256(f"alchemiser-migrations:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def upgrade_to_head(
    engine: Engine, *, script_location: str | Path, version_table: str, target_metadata: Any
) -> None:
    """Run ``alembic upgrade head`` for one migration tree, serialised across processes.

    The whole upgrade runs in one transaction holding a PostgreSQL advisory lock derived from
    ``version_table`` (SQLite: ``BEGIN IMMEDIATE`` holds the write lock), so several
    processes starting together migrate once and the others find the tree at head. The
    tree's ``env.py`` must call :func:`run_alembic_env`. Idempotent.
    """
    upgrade_to(
        engine,
        "head",
        script_location=script_location,
        version_table=version_table,
        target_metadata=target_metadata,
    )


def upgrade_to(
    engine: Engine,
    revision: str,
    *,
    script_location: str | Path,
    version_table: str,
    target_metadata: Any,
) -> None:
    """:func:`upgrade_to_head`, to ``revision`` of the tree (a test's older schema, say)."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["version_table"] = version_table
    config.attributes["target_metadata"] = target_metadata
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.select(sa.func.pg_advisory_xact_lock(_advisory_lock_key(version_table)))
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def run_alembic_env() -> None:
    """The body of a migration tree's ``env.py`` when run through :func:`upgrade_to_head`."""
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise ConfigurationError(
            "these migrations run only through alchemiser_common.db.upgrade_to_head"
        )
    context.configure(
        connection=connection,
        target_metadata=attributes.get("target_metadata"),
        version_table=attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """A ``Decimal`` stored without loss: ``NUMERIC`` on PostgreSQL, text on SQLite."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``VARCHAR`` on SQLite, unconstrained ``NUMERIC`` elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Refuse anything but a finite ``Decimal``; SQLite gets its canonical text."""
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"expected a finite Decimal, got {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Text or numeric back to ``Decimal``."""
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def fixed_values(values: Iterable[str]) -> list[sa.BindParameter[str]]:
    """``values`` as one bound parameter each, for ``column.in_(fixed_values(...))`` in a
    statement built once: a plain list would be an "expanding" parameter, which SQLAlchemy
    renders into the SQL again at every execution (~15 us a statement here)."""
    return [sa.literal(value, sa.String()) for value in values]


def insert_ignoring_duplicates(
    connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` of ``rows`` on ``table``'s primary key
    (PostgreSQL or SQLite): a row whose key exists is left as it is."""
    if not rows:
        return
    dialect = "sqlite" if connection.dialect.name == "sqlite" else "postgresql"
    connection.execute(_insert_ignoring_duplicates(dialect, table), list(rows))


@functools.lru_cache(maxsize=256)
def _insert_ignoring_duplicates(dialect: str, table: sa.Table) -> sa.Executable:
    """The statement of :func:`insert_ignoring_duplicates`, built once per table and dialect
    (SQLAlchemy then skips coercing it and generating its cache key on every call)."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    keys = [column.name for column in table.primary_key.columns]
    return insert(table).on_conflict_do_nothing(index_elements=keys)


@contextmanager
def outage_as(error: type[Exception], what: str) -> Iterator[None]:
    """Raise ``error`` (a service's ``TransientError``) for a transient database failure in the
    block, saying ``what`` was being done; other errors (constraint violations included) pass
    unchanged."""
    try:
        yield
    except sa_exc.SQLAlchemyError as err:
        if isinstance(err, sa_exc.IntegrityError) or not is_transient_database_error(err):
            raise
        raise error(f"{what}: database unavailable: {err}") from err


@contextmanager
def transaction(
    engine: Engine, error: type[Exception], what: str, *, write: bool = False
) -> Iterator[Connection]:
    """One short transaction on ``engine`` (SQLite: ``BEGIN IMMEDIATE`` to write, ``DEFERRED``
    to read), its outages raised as ``error`` (see :func:`outage_as`)."""
    mode = "IMMEDIATE" if write else "DEFERRED"
    with (
        outage_as(error, what),
        engine.connect().execution_options(sqlite_begin=mode) as connection,
        connection.begin(),
    ):
        yield connection
