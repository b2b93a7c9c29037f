"""The catalog of released Avro schemas: ``<schemas dir>/<topic>/v<N>.avsc``.

Each topic directory holds every released version of its value schema; the highest is the
current one. Subjects follow the topic name strategy: ``<topic>-value``. Released files are
never edited or deleted; a change is a new ``v<N+1>.avsc``.

The schemas are package data of ``alchemiser-common`` (``alchemiser_common/schemas/avro``;
the repository's ``schemas/avro`` is a symbolic link to it), so an installed wheel or image
carries its own contracts. The directory is, in order: the ``directory`` argument; the
environment variable ``ALCHEMISER_SCHEMAS_DIR``; the package data.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemiser_common.errors import SchemaError

__all__ = [
    "PACKAGED_SCHEMAS_DIR",
    "SCHEMAS_DIR_ENV",
    "SUBJECT_SUFFIX",
    "SchemaCatalog",
    "SchemaVersion",
    "find_schemas_dir",
    "subject_for_topic",
    "topic_for_subject",
]

SCHEMAS_DIR_ENV = "ALCHEMISER_SCHEMAS_DIR"
SUBJECT_SUFFIX = "-value"
#: The schemas shipped inside this package (the default directory).
PACKAGED_SCHEMAS_DIR = Path(__file__).resolve().parent / "avro"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")


def subject_for_topic(topic: str) -> str:
    """The registry subject of a topic's value schema (topic name strategy)."""
    return f"{topic}{SUBJECT_SUFFIX}"


def topic_for_subject(subject: str) -> str:
    """The topic of a ``<topic>-value`` subject; ``SchemaError`` for another form."""
    if not subject.endswith(SUBJECT_SUFFIX) or subject == SUBJECT_SUFFIX:
        raise SchemaError(f"subject {subject!r} is not of the form <topic>{SUBJECT_SUFFIX}")
    return subject.removesuffix(SUBJECT_SUFFIX)


def find_schemas_dir(directory: str | Path | None = None) -> Path:
    """The schemas directory: ``directory``, else ``$ALCHEMISER_SCHEMAS_DIR``, else the package's.

    Raises ``SchemaError`` when the chosen directory does not exist.
    """
    explicit = directory if directory is not None else os.environ.get(SCHEMAS_DIR_ENV)
    path = Path(explicit).expanduser().resolve() if explicit else PACKAGED_SCHEMAS_DIR
    if not path.is_dir():
        raise SchemaError(f"schemas directory {path} does not exist")
    return path


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One released schema file."""

    topic: str
    version: int
    path: Path

    @property
    def subject(self) -> str:
        """The registry subject, ``<topic>-value``."""
        return subject_for_topic(self.topic)

    def text(self) -> str:
        """The file's JSON text."""
        return self.path.read_text(encoding="utf-8")

    def load(self) -> dict[str, Any]:
        """The schema as a dict; ``SchemaError`` if the file is not a JSON object."""
        try:
            data = json.loads(self.text())
        except json.JSONDecodeError as err:
            raise SchemaError(f"{self.path}: not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise SchemaError(f"{self.path}: top level must be a JSON object (a record)")
        return data


class SchemaCatalog:
    """The released schema versions under one ``schemas/avro`` directory."""

    def __init__(self, root: Path) -> None:
        """Catalog the directory ``root`` (use :meth:`discover` to locate it)."""
        self.root = root

    @classmethod
    def discover(cls, directory: str | Path | None = None) -> SchemaCatalog:
        """Catalog the directory found by :func:`find_schemas_dir`."""
        return cls(find_schemas_dir(directory))

    def topics(self) -> list[str]:
        """Topics that have at least one released version, sorted."""
        return sorted(
            path.name
            for path in self.root.iterdir()
            if path.is_dir() and any(_VERSION_FILE.match(p.name) for p in path.iterdir())
        )

    def subjects(self) -> list[str]:
        """Subjects (``<topic>-value``) with at least one released version, sorted."""
        return [subject_for_topic(topic) for topic in self.topics()]

    def versions(self, subject: str) -> list[SchemaVersion]:
        """Every released version of ``subject`` (a subject or a bare topic), oldest first."""
        topic = subject.removesuffix(SUBJECT_SUFFIX)
        directory = self.root / topic
        if not directory.is_dir():
            raise SchemaError(f"no schemas for subject {subject_for_topic(topic)!r}")
        found = [
            SchemaVersion(topic=topic, version=int(match.group(1)), path=path)
            for path in directory.iterdir()
            if (match := _VERSION_FILE.match(path.name))
        ]
        if not found:
            raise SchemaError(f"no schemas for subject {subject_for_topic(topic)!r}")
        return sorted(found, key=lambda item: item.version)

    def current(self, subject: str) -> SchemaVersion:
        """The highest released version of ``subject``."""
        return self.versions(subject)[-1]

    def get(self, subject: str, version: int | None = None) -> SchemaVersion:
        """One version of ``subject``; the current one when ``version`` is ``None``."""
        if version is None:
            return self.current(subject)
        for item in self.versions(subject):
            if item.version == version:
                return item
        raise SchemaError(f"subject {subject!r} has no version {version}")

    def load(self, subject: str, version: int | None = None) -> dict[str, Any]:
        """The schema dict of one version of ``subject`` (default: current)."""
        return self.get(subject, version).load()

    def layout_problems(self) -> list[tuple[str, str]]:
        """``(where, message)`` for each break of the layout: stray ``.avsc`` names, gaps."""
        problems: list[tuple[str, str]] = []
        for path in sorted(self.root.iterdir()):
            if not path.is_dir():
                if path.suffix == ".avsc":
                    problems.append((path.name, "schema outside a topic directory"))
                continue
            numbers: list[int] = []
            for file in sorted(path.iterdir()):
                match = _VERSION_FILE.match(file.name)
                if match:
                    numbers.append(int(match.group(1)))
                elif file.suffix == ".avsc":
                    problems.append((f"{path.name}/{file.name}", "not named v<N>.avsc"))
            expected = list(range(1, len(numbers) + 1))
            if numbers and sorted(numbers) != expected:
                message = (
                    f"versions {sorted(numbers)} are not 1..N "
                    "(a released version was removed or skipped)"
                )
                problems.append((subject_for_topic(path.name), message))
        return problems
