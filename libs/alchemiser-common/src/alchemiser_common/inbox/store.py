"""The inbox port: record a batch of handled inputs in one short transaction; the key decides.

The processing loop uses two calls per batch, and never holds a transaction across a handler:

* :meth:`InboxStore.lookup` (before the handlers, a plain read): which inputs were already
  recorded — a committed row with the same content hash is DUPLICATE (its stored outputs are
  re-emitted, unless they are known to be published), another hash is CONFLICT. This only
  saves handler work on redelivery; the constraint below still decides.
* :meth:`InboxStore.record` (after the handlers): ONE transaction that inserts every entry's
  row with ``INSERT ... ON CONFLICT (consumer, dedupe_key) DO NOTHING RETURNING``, then, for
  each row it inserted, runs the entry's unit of work inside a SAVEPOINT and stores its
  outputs. A row it did not insert lost a race to another instance: DUPLICATE with that
  instance's stored outputs (or CONFLICT). A unit of work that raises rolls back to its
  savepoint and its row is deleted again: STATE_FAILED, the others commit.

A concurrent insert of the same key waits for the first transaction (PostgreSQL: on the index
entry, at READ COMMITTED; SQLite: on ``BEGIN IMMEDIATE``) and then finds its committed row,
or claims the key itself if that transaction rolled back.

Transient database failures surface as :class:`InboxUnavailableError` (nothing committed, or
for a failed commit unknown: the retry finds the rows), others as :class:`InboxStoreError`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from alchemiser_common.db import (
    is_transient_database_error,
    sqlite_engine_is_configured,
    upgrade_to_head,
)
from alchemiser_common.errors import ConfigurationError, TransientError
from alchemiser_common.inbox.bulk import claim_rows, insert_outputs
from alchemiser_common.inbox.exceptions import InboxUnavailableError, InboxUsageError
from alchemiser_common.inbox.model import (
    Claim,
    ClaimOutcome,
    InboxEntry,
    InboxRecord,
    StoredOutput,
)
from alchemiser_common.inbox.schema import (
    decode_headers,
    encode_headers,
    inbox_output_table,
    inbox_table,
    metadata,
)
from alchemiser_common.inbox.translate import DRIVER_ERRORS, describe_error, translated_errors

__all__ = [
    "INBOX_VERSION_TABLE",
    "INSERT_PAGE_ROWS",
    "InboxStore",
    "PostgresInboxStore",
    "SqliteInboxStore",
    "inbox_store_for",
]

INBOX_VERSION_TABLE = "alembic_version_inbox"
"""Alembic version table of the inbox migrations (services keep their own trees and tables)."""

#: Rows per multi-row INSERT of the generic (SQLite) path; PostgreSQL sends a batch as arrays
#: in one statement instead (:mod:`.bulk`).
INSERT_PAGE_ROWS = 25

_MIGRATIONS = Path(__file__).parent / "migrations"
_log = logging.getLogger(__name__)

# The statements of a batch are built once, one per dialect where they differ (SQLAlchemy then
# skips coercing them and generating their cache keys on every call); ``_dialect`` picks one.
_DIALECTS = ("postgresql", "sqlite")


def _dialect(name: str) -> str:
    """Which dialect's statement to run (PostgreSQL's, else SQLite's)."""
    return "postgresql" if name == "postgresql" else "sqlite"


def _key_in(
    dialect: str, column: sa.ColumnElement[str] = inbox_table.c.dedupe_key
) -> sa.ColumnElement[bool]:
    """``column IN :keys`` (a list parameter); on PostgreSQL one array parameter (``= ANY``),
    not one bound parameter per key: a batch looks up a thousand keys, and expanding them
    costs more than the query."""
    if dialect == "postgresql":
        array = sa.bindparam("keys", type_=postgresql.ARRAY(sa.String()))
        return column == sa.any_(array)
    return column.in_(sa.bindparam("keys", expanding=True))


# ``INSERT ... ON CONFLICT DO NOTHING RETURNING dedupe_key``, run with many rows (the generic
# claim; PostgreSQL's store claims through :mod:`.bulk`). SQLAlchemy's "insertmanyvalues"
# turns the executemany into multi-row inserts with one cached compiled form, so a batch of
# claims costs a round trip, not one per row.
_CLAIM = {
    dialect: insert(inbox_table)
    .on_conflict_do_nothing(index_elements=["consumer", "dedupe_key"])
    .returning(inbox_table.c.dedupe_key)
    for dialect, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}

_DELETE_ROW = sa.delete(inbox_table).where(
    inbox_table.c.consumer == sa.bindparam("consumer"),
    inbox_table.c.dedupe_key == sa.bindparam("dedupe_key"),
)

_INSERT_OUTPUTS = sa.insert(inbox_output_table)  # the generic path, one row per output

# the WHERE parameter is ``b_consumer``: a column's own name is reserved for its SET value
_MARK_PUBLISHED = {
    dialect: sa.update(inbox_table)
    .where(
        inbox_table.c.consumer == sa.bindparam("b_consumer"),
        _key_in(dialect),
        inbox_table.c.published_at.is_(None),
    )
    .values(published_at=sa.bindparam("published_at"))
    for dialect in _DIALECTS
}


class InboxStore(ABC):
    """The inbox port (see the module docstring); one adapter per database dialect.

    Use :func:`inbox_store_for` to pick the adapter for an engine. ``clock`` stamps
    ``processed_at`` and ``published_at``.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def engine(self) -> Engine:
        """The engine the store uses."""
        return self._engine

    @abstractmethod
    def _connect(self, *, write: bool = True) -> Connection:
        """A new connection; ``write=False`` for reads that must not queue behind writers."""

    def now(self) -> datetime:
        """The store's clock, in UTC."""
        return self._clock().astimezone(UTC)

    # -- lifecycle -----------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the inbox tables (Alembic ``upgrade head``); idempotent.

        Safe to call from several processes at start-up: the upgrade is serialised by a
        PostgreSQL advisory lock (SQLite: the write lock) and later callers find it done.
        """
        with translated_errors("migrating the inbox tables"):
            upgrade_to_head(
                self._engine,
                script_location=_MIGRATIONS,
                version_table=INBOX_VERSION_TABLE,
                target_metadata=metadata,
            )

    def ping(self) -> None:
        """Check the database answers and the inbox table exists (readiness).

        Raises :class:`InboxUnavailableError` when unreachable, :class:`InboxStoreError` when
        reachable but not migrated.
        """
        with (
            translated_errors("pinging the inbox database"),
            self._connect(write=False) as connection,
        ):
            connection.execute(sa.select(sa.literal(1)).select_from(inbox_table).limit(0))

    # -- the two calls of a batch --------------------------------------------------------
    def lookup(self, consumer: str, hashes: Mapping[str, str]) -> dict[str, Claim]:
        """The committed rows among ``hashes``' keys (key -> content hash), as claims.

        Keys without a row are absent from the result. A plain read: no lock is held after it.
        """
        if not hashes:
            return {}
        with (
            translated_errors(f"looking up {len(hashes)} input(s) of {consumer}"),
            self._connect(write=False) as connection,
        ):
            return _existing(connection, consumer, hashes)

    def record(
        self,
        consumer: str,
        entries: Sequence[InboxEntry],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> dict[str, Claim]:
        """Record ``entries`` (distinct keys) in ONE transaction; one claim per key.

        NEW: the row, the unit of work and the outputs committed. DUPLICATE / CONFLICT: the
        row existed (another instance won); nothing of this entry was written. STATE_FAILED:
        the unit of work raised; neither its row nor its state nor its outputs were kept.
        ``before_commit`` runs inside the transaction just before the commit (a test hook).
        """
        by_key = {entry.dedupe_key: entry for entry in entries}
        if len(by_key) != len(entries):
            raise InboxUsageError("record() needs distinct dedupe keys")
        if not entries:
            return {}
        with translated_errors(f"recording {len(entries)} input(s) of {consumer}"):
            connection = self._connect().execution_options(
                insertmanyvalues_page_size=INSERT_PAGE_ROWS
            )
        try:
            try:
                with translated_errors(f"recording {len(entries)} input(s) of {consumer}"):
                    connection.begin()
                    claims = self._record(connection, consumer, by_key)
                if before_commit is not None:
                    before_commit()
                with translated_errors(f"committing {len(entries)} input(s) of {consumer}"):
                    connection.commit()
            except BaseException:
                _rollback_quietly(connection)
                raise
        finally:
            _close_quietly(connection)
        return claims

    def _record(
        self, connection: Connection, consumer: str, entries: Mapping[str, InboxEntry]
    ) -> dict[str, Claim]:
        # one lock order for every instance: two batches holding the same keys in another
        # order would otherwise deadlock on PostgreSQL
        ordered = sorted(entries.values(), key=lambda entry: entry.dedupe_key)
        inserted = self._claim(connection, consumer, ordered, self.now())
        lost = {key: entry.content_hash for key, entry in entries.items() if key not in inserted}
        claims = _existing(connection, consumer, lost)
        missing = set(lost) - set(claims)
        if missing:  # deleted between our insert and read (a retention purge): retry the batch
            raise InboxUnavailableError(f"inbox rows {sorted(missing)[:3]} vanished; retry")
        stored: list[InboxEntry] = []
        for key, entry in entries.items():
            if key not in inserted:
                continue
            error = _apply(connection, entry) if entry.state is not None else None
            if error is not None:
                connection.execute(_DELETE_ROW, {"consumer": consumer, "dedupe_key": key})
                claims[key] = Claim(ClaimOutcome.STATE_FAILED, error=error)
                continue
            claims[key] = Claim(ClaimOutcome.NEW)
            stored.append(entry)
        self._store_outputs(connection, consumer, stored)
        return claims

    def _claim(
        self, connection: Connection, consumer: str, entries: Sequence[InboxEntry], now: datetime
    ) -> set[str]:
        """Insert the entries' rows in the given order (``ON CONFLICT DO NOTHING``); the keys
        inserted. RETURNING rather than rowcount: drivers report -1 for ``ON CONFLICT``."""
        rows = [
            {
                "consumer": consumer,
                "dedupe_key": entry.dedupe_key,
                "content_hash": entry.content_hash,
                "event_id": entry.event_id,
                "source_topic": entry.topic,
                "source_partition": entry.partition,
                "source_offset": entry.offset,
                "processed_at": now,
            }
            for entry in entries
        ]
        statement = _CLAIM[_dialect(connection.dialect.name)]
        return {row.dedupe_key for row in connection.execute(statement, rows)}

    def _store_outputs(
        self, connection: Connection, consumer: str, entries: Sequence[InboxEntry]
    ) -> None:
        """Store the outputs of ``entries`` (rows already claimed), ``seq`` in output order."""
        outputs = [
            {
                "consumer": consumer,
                "dedupe_key": entry.dedupe_key,
                "seq": seq,
                "topic": output.topic,
                "key": output.key,
                "value": output.value,
                "headers": encode_headers(output.headers),
            }
            for entry in entries
            for seq, output in enumerate(entry.outputs)
        ]
        if outputs:
            connection.execute(_INSERT_OUTPUTS, outputs)

    def mark_published(self, consumer: str, dedupe_keys: Iterable[str]) -> None:
        """Record that the outputs of these inputs are committed to Kafka.

        Called after the Kafka transaction commits. A later duplicate of a published input
        re-emits nothing; one of an unpublished input (crash before this call) re-emits the
        stored outputs, which downstream dedupe recognises by their event ids.
        """
        keys = list(dedupe_keys)
        if not keys:
            return
        statement = _MARK_PUBLISHED[_dialect(self._engine.dialect.name)]
        parameters = {"b_consumer": consumer, "keys": keys, "published_at": self.now()}
        with (
            translated_errors(f"marking {len(keys)} input(s) published"),
            self._connect() as connection,
        ):
            connection.execute(statement, parameters)
            connection.commit()

    # -- reads for operators and tests ---------------------------------------------------
    def get(self, consumer: str, dedupe_key: str) -> InboxRecord | None:
        """The committed row for ``(consumer, dedupe_key)`` with its outputs, or ``None``."""
        with (
            translated_errors(f"reading {consumer}/{dedupe_key}"),
            self._connect(write=False) as connection,
        ):
            row = connection.execute(
                sa.select(inbox_table).where(
                    inbox_table.c.consumer == consumer, inbox_table.c.dedupe_key == dedupe_key
                )
            ).one_or_none()
            if row is None:
                return None
            outputs = _outputs(connection, consumer, [dedupe_key]).get(dedupe_key, ())
            return InboxRecord(
                consumer=row.consumer,
                dedupe_key=row.dedupe_key,
                content_hash=row.content_hash,
                event_id=row.event_id,
                topic=row.source_topic,
                partition=row.source_partition,
                offset=row.source_offset,
                processed_at=_as_utc(row.processed_at),
                outputs=outputs,
            )


class PostgresInboxStore(InboxStore):
    """The inbox on PostgreSQL (psycopg 3); every transaction runs at READ COMMITTED.

    READ COMMITTED is what makes a blocked concurrent claim see the first transaction's
    committed row; it is pinned so a server-wide ``default_transaction_isolation`` cannot
    turn duplicates into serialization failures.
    """

    def _connect(self, *, write: bool = True) -> Connection:
        return self._engine.connect().execution_options(isolation_level="READ COMMITTED")

    def _claim(
        self, connection: Connection, consumer: str, entries: Sequence[InboxEntry], now: datetime
    ) -> set[str]:
        """One ``INSERT ... SELECT FROM unnest(...)`` for the whole batch (see :mod:`.bulk`)."""
        return claim_rows(connection, consumer, entries, now)

    def _store_outputs(
        self, connection: Connection, consumer: str, entries: Sequence[InboxEntry]
    ) -> None:
        """One ``INSERT ... SELECT FROM unnest(...)`` for every output of the batch."""
        insert_outputs(connection, consumer, entries)


class SqliteInboxStore(InboxStore):
    """The inbox on SQLite; needs an engine from ``create_engine_from_url`` (BEGIN IMMEDIATE)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        if not sqlite_engine_is_configured(engine):
            raise ConfigurationError(
                "SqliteInboxStore needs an engine from alchemiser_common.db."
                "create_engine_from_url (transactions must start with BEGIN IMMEDIATE)"
            )
        super().__init__(engine, clock=clock)

    def _connect(self, *, write: bool = True) -> Connection:
        # Writes take the write lock up front (concurrent writers queue; no lock upgrade that
        # could fail half-way); reads use WAL snapshots and never wait for a writer.
        mode = "IMMEDIATE" if write else "DEFERRED"
        return self._engine.connect().execution_options(sqlite_begin=mode)


def inbox_store_for(engine: Engine, *, clock: Callable[[], datetime] | None = None) -> InboxStore:
    """The inbox store implementation for ``engine``'s dialect (PostgreSQL or SQLite)."""
    if engine.dialect.name == "postgresql":
        return PostgresInboxStore(engine, clock=clock)
    if engine.dialect.name == "sqlite":
        return SqliteInboxStore(engine, clock=clock)
    raise ConfigurationError(f"no inbox store for database dialect {engine.dialect.name!r}")


def _apply(connection: Connection, entry: InboxEntry) -> BaseException | None:
    """Run the entry's unit of work in a SAVEPOINT; the error if it failed (rolled back).

    A transient failure (a transient database error, or a ``TransientError`` of the unit of
    work) is raised: the whole batch is retried, nothing dead-lettered.
    """
    assert entry.state is not None
    savepoint = connection.begin_nested()
    try:
        entry.state(connection)
    except TransientError:
        savepoint.rollback()
        raise
    except Exception as err:
        savepoint.rollback()
        if isinstance(err, DRIVER_ERRORS) and is_transient_database_error(err):
            raise InboxUnavailableError(
                f"database unavailable applying the state of {entry.dedupe_key}: "
                f"{describe_error(err)}"
            ) from err
        return err
    savepoint.commit()
    return None


_EXISTING = {
    dialect: sa.select(
        inbox_table.c.dedupe_key, inbox_table.c.content_hash, inbox_table.c.published_at
    ).where(inbox_table.c.consumer == sa.bindparam("consumer"), _key_in(dialect))
    for dialect in _DIALECTS
}


def _existing(connection: Connection, consumer: str, hashes: Mapping[str, str]) -> dict[str, Claim]:
    """Claims for the keys of ``hashes`` that have a committed row (others are absent)."""
    if not hashes:
        return {}
    statement = _EXISTING[_dialect(connection.dialect.name)]
    rows = connection.execute(statement, {"consumer": consumer, "keys": list(hashes)}).all()
    unpublished = [
        row.dedupe_key
        for row in rows
        if row.published_at is None and row.content_hash == hashes[row.dedupe_key]
    ]
    stored = _outputs(connection, consumer, unpublished)
    claims: dict[str, Claim] = {}
    for row in rows:
        if row.content_hash != hashes[row.dedupe_key]:
            claims[row.dedupe_key] = Claim(
                ClaimOutcome.CONFLICT, stored_content_hash=row.content_hash
            )
        else:
            claims[row.dedupe_key] = Claim(
                ClaimOutcome.DUPLICATE,
                stored_outputs=stored.get(row.dedupe_key, ()),
                stored_content_hash=row.content_hash,
                stored_published=row.published_at is not None,
            )
    return claims


_OUTPUTS = {
    dialect: sa.select(inbox_output_table)
    .where(
        inbox_output_table.c.consumer == sa.bindparam("consumer"),
        _key_in(dialect, inbox_output_table.c.dedupe_key),
    )
    .order_by(inbox_output_table.c.dedupe_key, inbox_output_table.c.seq)
    for dialect in _DIALECTS
}


def _outputs(
    connection: Connection, consumer: str, keys: Sequence[str]
) -> dict[str, tuple[StoredOutput, ...]]:
    """The stored outputs of ``keys``, each in production order."""
    if not keys:
        return {}
    found: dict[str, list[StoredOutput]] = {}
    statement = _OUTPUTS[_dialect(connection.dialect.name)]
    for row in connection.execute(statement, {"consumer": consumer, "keys": list(keys)}):
        found.setdefault(row.dedupe_key, []).append(
            StoredOutput(
                topic=row.topic,
                key=None if row.key is None else bytes(row.key),
                value=bytes(row.value),
                headers=decode_headers(row.headers),
            )
        )
    return {key: tuple(outputs) for key, outputs in found.items()}


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rollback_quietly(connection: Connection) -> None:
    try:
        connection.rollback()
    except DRIVER_ERRORS as err:  # the connection is gone: the server rolled back already
        _log.warning("inbox rollback failed; the database discards the transaction: %s", err)


def _close_quietly(connection: Connection) -> None:
    try:
        connection.close()
    except DRIVER_ERRORS as err:
        _log.warning("closing the inbox connection failed: %s", err)
