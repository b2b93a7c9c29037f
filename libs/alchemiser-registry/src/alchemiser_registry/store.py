"""Durable registry state: schemas, subject versions and compatibility levels in one SQLite file.

Rules kept here, as the Confluent Schema Registry keeps them:

* A schema is identified by its canonical form (:func:`~alchemiser_common.avro_compat.
  canonical_schema`), so whitespace and key order do not matter. Ids are global: the same
  schema under another subject reuses its id; ids are never reused (``AUTOINCREMENT``).
* Versions count from 1 per subject and are never reused while a soft-deleted row exists.
* Registering the schema of a live version returns its id without a compatibility check;
  otherwise the candidate is checked against the live versions with the subject's level (or
  the global one, ``BACKWARD`` by default).

Every public method runs in one SQLite transaction under one lock, so concurrent callers in
one process see a consistent store and never get the same id for different schemas.

A data directory that cannot hold the store (a file, not writable, a database that cannot be
opened or written) raises :class:`DataDirError` with one line naming the directory, which the
commands print instead of a traceback.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alchemiser_common.avro_compat import (
    CompatibilityLevel,
    Incompatibility,
    canonical_schema,
    check_compatibility,
)
from alchemiser_common.errors import ConfigurationError, SchemaError
from alchemiser_registry.exceptions import (
    CompatibilityNotConfiguredError,
    IncompatibleSchemaError,
    InvalidSchemaError,
    SchemaNotFoundError,
    SubjectNotFoundError,
    SubjectNotSoftDeletedError,
    SubjectSoftDeletedError,
    VersionNotFoundError,
    VersionNotSoftDeletedError,
    VersionSoftDeletedError,
)

__all__ = ["DATABASE_FILE", "DEFAULT_LEVEL", "DataDirError", "SchemaStore", "SubjectVersion"]

DATABASE_FILE = "registry.sqlite3"
DEFAULT_LEVEL = CompatibilityLevel.BACKWARD

_DDL = (
    """CREATE TABLE IF NOT EXISTS schemas (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        canonical TEXT NOT NULL UNIQUE)""",
    """CREATE TABLE IF NOT EXISTS subject_versions (
        subject TEXT NOT NULL,
        version INTEGER NOT NULL,
        schema_id INTEGER NOT NULL REFERENCES schemas (id),
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (subject, version))""",
    "CREATE INDEX IF NOT EXISTS subject_versions_by_schema ON subject_versions (schema_id)",
    """CREATE TABLE IF NOT EXISTS global_config (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        compatibility TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS subject_config (
        subject TEXT PRIMARY KEY,
        compatibility TEXT NOT NULL)""",
)

_SELECT_VERSIONS = """
    SELECT v.subject, v.version, v.schema_id, s.canonical, v.deleted
    FROM subject_versions AS v JOIN schemas AS s ON s.id = v.schema_id
"""


class DataDirError(ConfigurationError):
    """The data directory cannot hold the registry's database (one line, naming it)."""


def _reason(err: OSError | sqlite3.Error) -> str:
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return str(err) or type(err).__name__


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """One version of a subject: its number, global schema id and canonical schema text."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


def _canonical(schema_text: str) -> str:
    try:
        return canonical_schema(schema_text)
    except SchemaError as err:
        raise InvalidSchemaError(f"Invalid schema {schema_text!r}: {err}") from err


def _incompatible_message(subject: str, problems: list[Incompatibility]) -> str:
    details = "; ".join(problem.describe() for problem in problems)
    return (
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
        f"details: [{details}]"
    )


class SchemaStore:
    """The registry's state in ``<data_dir>/registry.sqlite3``; safe to share between threads."""

    def __init__(self, data_dir: Path) -> None:
        """Open (or create) ``<data_dir>/registry.sqlite3``; ``DataDirError`` if it cannot."""
        self.path = data_dir / DATABASE_FILE
        self._lock = threading.RLock()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DataDirError(f"registry data dir {data_dir} is not a directory") from None
        except OSError as err:
            raise DataDirError(
                f"registry data dir {data_dir} cannot be created: {_reason(err)}"
            ) from None
        if not data_dir.is_dir():
            raise DataDirError(f"registry data dir {data_dir} is not a directory")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise DataDirError(
                f"registry data dir {data_dir}: cannot open {DATABASE_FILE} ({_reason(err)}); "
                "is the directory writable?"
            ) from None
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._transaction() as db:
                for statement in _DDL:
                    db.execute(statement)
        except sqlite3.Error as err:
            self._db.close()
            raise DataDirError(
                f"registry data dir {data_dir}: cannot use {DATABASE_FILE} ({_reason(err)})"
            ) from None

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction, holding the store's lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- queries used inside transactions -------------------------------------------------

    @staticmethod
    def _versions(
        db: sqlite3.Connection, subject: str, *, deleted: bool = False
    ) -> list[SubjectVersion]:
        """The subject's versions, oldest first; soft-deleted ones only when ``deleted``."""
        where = "WHERE v.subject = ?" + ("" if deleted else " AND v.deleted = 0")
        rows = db.execute(f"{_SELECT_VERSIONS} {where} ORDER BY v.version", (subject,))
        return [SubjectVersion(s, v, i, text, bool(d)) for s, v, i, text, d in rows]

    @staticmethod
    def _level(db: sqlite3.Connection, subject: str | None) -> CompatibilityLevel | None:
        if subject is None:
            row = db.execute("SELECT compatibility FROM global_config").fetchone()
        else:
            query = "SELECT compatibility FROM subject_config WHERE subject = ?"
            row = db.execute(query, (subject,)).fetchone()
        return None if row is None else CompatibilityLevel(row[0])

    def _effective_level(self, db: sqlite3.Connection, subject: str) -> CompatibilityLevel:
        return self._level(db, subject) or self._level(db, None) or DEFAULT_LEVEL

    @staticmethod
    def _schema_id(db: sqlite3.Connection, canonical: str) -> int:
        """The id of a schema, adding it with the next id if new.

        Looked up first, not ``INSERT OR IGNORE``: an ignored insert still advances the
        ``AUTOINCREMENT`` sequence, which would leave gaps in the ids.
        """
        row = db.execute("SELECT id FROM schemas WHERE canonical = ?", (canonical,)).fetchone()
        if row is None:
            row = db.execute(
                "INSERT INTO schemas (canonical) VALUES (?) RETURNING id", (canonical,)
            ).fetchone()
        return int(row[0])

    def _find(
        self, db: sqlite3.Connection, subject: str, version: int | None, *, deleted: bool
    ) -> SubjectVersion:
        """One version (``None`` = the latest); 40401 without versions, 40402 if missing."""
        versions = self._versions(db, subject, deleted=deleted)
        if not versions:
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        if version is None:
            return versions[-1]
        for found in versions:
            if found.version == version:
                return found
        raise VersionNotFoundError(f"Version {version} not found.")

    # --- schemas and versions ---------------------------------------------------------------

    def register(self, subject: str, schema_text: str) -> int:
        """Register a schema under ``subject`` and return its global id (idempotent).

        Raises ``InvalidSchemaError`` for an invalid schema and ``IncompatibleSchemaError``
        when it breaks the subject's compatibility level against the live versions.
        """
        canonical = _canonical(schema_text)
        with self._transaction() as db:
            live = self._versions(db, subject)
            for existing in live:
                if existing.schema == canonical:
                    return existing.schema_id
            level = self._effective_level(db, subject)
            problems = check_compatibility(canonical, [(v.version, v.schema) for v in live], level)
            if problems:
                raise IncompatibleSchemaError(_incompatible_message(subject, problems))
            schema_id = self._schema_id(db, canonical)
            (last,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM subject_versions WHERE subject = ?",
                (subject,),
            ).fetchone()
            db.execute(
                "INSERT INTO subject_versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, last + 1, schema_id),
            )
            return schema_id

    def lookup(self, subject: str, schema_text: str, *, deleted: bool = False) -> SubjectVersion:
        """The newest version of ``subject`` holding this schema (40401, 40403 if none)."""
        canonical = _canonical(schema_text)
        with self._transaction() as db:
            versions = self._versions(db, subject, deleted=deleted)
            if not versions:
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            for found in reversed(versions):
                if found.schema == canonical:
                    return found
            raise SchemaNotFoundError("Schema not found")

    def schema(self, schema_id: int) -> str:
        """The canonical text of schema ``schema_id`` (40403 unless some version uses it)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT s.canonical FROM schemas AS s WHERE s.id = ? AND EXISTS "
                "(SELECT 1 FROM subject_versions AS v WHERE v.schema_id = s.id)",
                (schema_id,),
            ).fetchone()
        if row is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return str(row[0])

    def usages(self, schema_id: int, *, deleted: bool = False) -> list[tuple[str, int]]:
        """The ``(subject, version)`` pairs using schema ``schema_id`` (40403 if none)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT subject, version, deleted FROM subject_versions WHERE schema_id = ? "
                "ORDER BY subject, version",
                (schema_id,),
            ).fetchall()
        if not rows:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return [(subject, version) for subject, version, gone in rows if deleted or not gone]

    def subjects(self, *, deleted: bool = False, deleted_only: bool = False) -> list[str]:
        """Subjects with a live version; with ``deleted`` also soft-deleted ones."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT subject, MIN(deleted) FROM subject_versions GROUP BY subject "
                "ORDER BY subject"
            ).fetchall()
        if deleted_only:
            return [str(name) for name, all_deleted in rows if all_deleted]
        return [str(name) for name, all_deleted in rows if deleted or not all_deleted]

    def versions(
        self, subject: str, *, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        """The subject's version numbers, oldest first (40401 if there are none)."""
        with self._transaction() as db:
            found = self._versions(db, subject, deleted=deleted or deleted_only)
        if deleted_only:
            found = [v for v in found if v.deleted]
        if not found:
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        return [v.version for v in found]

    def version(
        self, subject: str, version: int | None, *, deleted: bool = False
    ) -> SubjectVersion:
        """One version of ``subject``; ``None`` means the latest."""
        with self._transaction() as db:
            return self._find(db, subject, version, deleted=deleted)

    def check(self, subject: str, schema_text: str, version: int | None) -> list[Incompatibility]:
        """Incompatibilities of a candidate against one version (``None`` = latest).

        The direction follows the subject's level; with no versions at all and ``latest``,
        the candidate is compatible, as with Confluent.
        """
        canonical = _canonical(schema_text)
        with self._transaction() as db:
            level = self._effective_level(db, subject)
            if version is None and not self._versions(db, subject):
                return []
            target = self._find(db, subject, version, deleted=False)
        return check_compatibility(canonical, [(target.version, target.schema)], level)

    def check_all(self, subject: str, schema_text: str) -> list[Incompatibility]:
        """Incompatibilities of a candidate against the live versions, as on registration."""
        canonical = _canonical(schema_text)
        with self._transaction() as db:
            level = self._effective_level(db, subject)
            live = [(v.version, v.schema) for v in self._versions(db, subject)]
        return check_compatibility(canonical, live, level)

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete the subject's live versions (and its level), or purge a soft-deleted one."""
        with self._transaction() as db:
            versions = self._versions(db, subject, deleted=True)
            if not versions:
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            live = [v.version for v in versions if not v.deleted]
            if permanent:
                if live:
                    raise SubjectNotSoftDeletedError(
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted"
                    )
                db.execute("DELETE FROM subject_versions WHERE subject = ?", (subject,))
                return [v.version for v in versions]
            if not live:
                raise SubjectSoftDeletedError(
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently"
                )
            db.execute("UPDATE subject_versions SET deleted = 1 WHERE subject = ?", (subject,))
            db.execute("DELETE FROM subject_config WHERE subject = ?", (subject,))
            return live

    def delete_version(self, subject: str, version: int | None, *, permanent: bool = False) -> int:
        """Soft-delete one version (``None`` = latest), or purge a soft-deleted one."""
        with self._transaction() as db:
            target = self._find(db, subject, version, deleted=permanent or version is not None)
            key = (subject, target.version)
            if permanent:
                if not target.deleted:
                    raise VersionNotSoftDeletedError(
                        f"Subject '{subject}' Version {target.version} was not deleted first "
                        "before being permanently deleted"
                    )
                db.execute("DELETE FROM subject_versions WHERE subject = ? AND version = ?", key)
                return target.version
            if target.deleted:
                raise VersionSoftDeletedError(
                    f"Subject '{subject}' Version {target.version} was soft deleted. Set "
                    "permanent=true to delete permanently"
                )
            db.execute(
                "UPDATE subject_versions SET deleted = 1 WHERE subject = ? AND version = ?", key
            )
            return target.version

    # --- compatibility levels ---------------------------------------------------------------

    def global_level(self) -> CompatibilityLevel:
        """The global level (``BACKWARD`` unless set)."""
        with self._transaction() as db:
            return self._level(db, None) or DEFAULT_LEVEL

    def set_global_level(self, level: CompatibilityLevel) -> None:
        """Set the global level."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO global_config (singleton, compatibility) VALUES (1, ?) "
                "ON CONFLICT (singleton) DO UPDATE SET compatibility = excluded.compatibility",
                (level.value,),
            )

    def reset_global_level(self) -> CompatibilityLevel:
        """Return the global level to the default; answer the level it had."""
        with self._transaction() as db:
            old = self._level(db, None) or DEFAULT_LEVEL
            db.execute("DELETE FROM global_config")
            return old

    def subject_level(self, subject: str, *, default_to_global: bool = False) -> CompatibilityLevel:
        """The subject's own level; the global one with ``default_to_global``, else 40408."""
        with self._transaction() as db:
            level = self._level(db, subject)
            if level is not None:
                return level
            if default_to_global:
                return self._level(db, None) or DEFAULT_LEVEL
        raise CompatibilityNotConfiguredError(
            f"Subject '{subject}' does not have subject-level compatibility configured"
        )

    def set_subject_level(self, subject: str, level: CompatibilityLevel) -> None:
        """Set the subject's own level (the subject need not exist yet)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO subject_config (subject, compatibility) VALUES (?, ?) "
                "ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility",
                (subject, level.value),
            )

    def delete_subject_level(self, subject: str) -> CompatibilityLevel:
        """Remove the subject's own level; answer the level it had (40401 if none)."""
        with self._transaction() as db:
            old = self._level(db, subject)
            if old is None:
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            db.execute("DELETE FROM subject_config WHERE subject = ?", (subject,))
            return old
