"""The offline schema gate: every current schema against every released version.

Run before merge (``alchemiser schemas check``). For each subject it checks that every
released version parses (Apache ``avro`` and ``fastavro``), then that the current (highest)
version is compatible with the earlier ones at the given level, using
:func:`alchemiser_common.avro_compat.check_compatibility` (the registry's rules). Layout
problems (stray file names, missing versions) are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from alchemiser_common.avro_compat import CompatibilityLevel, check_compatibility, parse_schema
from alchemiser_common.errors import SchemaError
from alchemiser_common.schemas.catalog import SchemaCatalog, SchemaVersion

__all__ = ["DEFAULT_LEVEL", "CheckReport", "SchemaProblem", "check_all", "check_catalog"]

DEFAULT_LEVEL = CompatibilityLevel.BACKWARD_TRANSITIVE


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One reason the gate fails.

    ``version`` and ``against`` are the versions compared (``against`` is ``None`` for a
    problem of one file); ``kinds`` and ``fields`` come from the compatibility checker.
    """

    subject: str
    message: str
    version: int | None = None
    against: int | None = None
    direction: str | None = None
    kinds: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line, e.g. ``t-value: v2 vs v1 (backward): <kind> at field(s) foo``."""
        if self.against is not None:
            fields = ", ".join(self.fields) or "/"
            line = (
                f"{self.subject}: v{self.version} vs v{self.against} ({self.direction}): "
                f"{', '.join(self.kinds)} at field(s) {fields}"
            )
            return line if self.message in {"", fields} else f"{line} ({self.message})"
        where = f"v{self.version}" if self.version is not None else "layout"
        return f"{self.subject}: {where}: {self.message}"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What the gate looked at and what it found."""

    root: Path
    level: CompatibilityLevel
    subjects: int
    versions: int
    problems: list[SchemaProblem]

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def _parse_problem(item: SchemaVersion) -> tuple[dict[str, Any] | None, SchemaProblem | None]:
    try:
        schema = item.load()
        parse_schema(schema)
        fastavro.parse_schema(schema)
    except SchemaError as err:
        return None, SchemaProblem(item.subject, str(err), version=item.version)
    except Exception as err:  # fastavro raises many exception types for a bad schema
        message = f"fastavro cannot parse: {type(err).__name__}: {err}"
        return None, SchemaProblem(item.subject, message, version=item.version)
    return schema, None


def check_catalog(catalog: SchemaCatalog, level: CompatibilityLevel = DEFAULT_LEVEL) -> CheckReport:
    """Run the gate over ``catalog`` and return the full report."""
    problems = [
        SchemaProblem(subject=where, message=message)
        for where, message in catalog.layout_problems()
    ]
    subjects = catalog.subjects()
    if not subjects:
        problems.append(SchemaProblem(str(catalog.root), "no <topic>/v<N>.avsc schemas found"))
    version_count = 0
    for subject in subjects:
        released = catalog.versions(subject)
        version_count += len(released)
        parsed: list[tuple[int, dict[str, Any]]] = []
        for item in released:
            schema, problem = _parse_problem(item)
            if problem is not None:
                problems.append(problem)
            elif schema is not None:
                parsed.append((item.version, schema))
        if len(parsed) != len(released):
            continue  # compatibility is meaningless until every version parses
        (current_version, current), earlier = parsed[-1], parsed[:-1]
        for found in check_compatibility(current, earlier, level):
            problems.append(
                SchemaProblem(
                    subject=subject,
                    message="; ".join(found.messages),
                    version=current_version,
                    against=found.version,
                    direction=found.direction,
                    kinds=found.kinds,
                    fields=found.fields,
                )
            )
    return CheckReport(catalog.root, level, len(subjects), version_count, problems)


def check_all(
    level: CompatibilityLevel = DEFAULT_LEVEL, directory: str | Path | None = None
) -> list[SchemaProblem]:
    """Check every subject under the schemas directory; return the problems (empty = pass).

    ``directory`` overrides the discovery of ``schemas/avro`` (see :mod:`.catalog`).
    """
    return check_catalog(SchemaCatalog.discover(directory), level).problems
