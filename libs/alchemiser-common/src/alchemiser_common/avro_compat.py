"""Avro schema compatibility, with the Confluent Schema Registry's level semantics.

The rules are those of the Apache ``avro`` package's ``ReaderWriterCompatibilityChecker``
(the same reader/writer rules the Confluent registry applies). Direction per level:

* BACKWARD: the new schema (reader) reads data written with the previous version (writer).
* FORWARD: the previous version (reader) reads data written with the new schema (writer).
* FULL: both.
* ``*_TRANSITIVE``: the same against every earlier version, not only the latest.
* NONE: everything is compatible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from alchemiser_common.errors import SchemaError

__all__ = [
    "CompatibilityLevel",
    "Incompatibility",
    "canonical_schema",
    "check_compatibility",
    "parse_schema",
]


class CompatibilityLevel(StrEnum):
    """The seven compatibility levels of the Confluent Schema Registry."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        """Whether every earlier version is checked, not only the latest."""
        return self.value.endswith("_TRANSITIVE")

    @property
    def checks_backward(self) -> bool:
        """Whether the new schema must read data written with earlier versions."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def checks_forward(self) -> bool:
        """Whether earlier versions must read data written with the new schema."""
        return self.value.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """Why a schema is incompatible with one earlier version, in one direction."""

    version: int
    direction: str
    kinds: tuple[str, ...]
    messages: tuple[str, ...]
    fields: tuple[str, ...]

    def describe(self) -> str:
        """One human-readable line naming the version, direction and offending fields."""
        fields = ", ".join(self.fields) or "/"
        return (
            f"version {self.version} ({self.direction}): {', '.join(self.kinds)} "
            f"at field(s) {fields} ({'; '.join(self.messages)})"
        )


def parse_schema(schema: str | dict[str, Any]) -> avro.schema.Schema:
    """Parse an Avro schema given as JSON text or a dict; raise ``SchemaError`` if invalid."""
    text = schema if isinstance(schema, str) else json.dumps(schema)
    try:
        return avro.schema.parse(text)
    except (avro.errors.AvroException, json.JSONDecodeError, TypeError, ValueError) as err:
        raise SchemaError(f"invalid Avro schema: {err}") from err


def canonical_schema(schema: str | dict[str, Any]) -> str:
    """Return the canonical JSON of a schema, so equal schemas compare equal as text.

    Parsing and re-serialising normalises whitespace, key order and shorthand forms.
    """
    parsed = parse_schema(schema)
    return json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"))


def _field_path(schema_json: Any, location: str) -> str:
    """Turn a checker location such as ``/fields/1/type`` into a dotted field path."""
    names: list[str] = []
    node = schema_json
    parts = [part for part in location.split("/") if part]
    for index, part in enumerate(parts):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            if index > 0 and parts[index - 1] == "fields" and isinstance(node, dict):
                names.append(str(node.get("name")))
        else:
            break
    return ".".join(names) or location


def _pair(
    reader: avro.schema.Schema, writer: avro.schema.Schema, version: int, direction: str
) -> list[Incompatibility]:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    reader_json = reader.to_json()
    return [
        Incompatibility(
            version=version,
            direction=direction,
            kinds=tuple(sorted(kind.value for kind in result.incompatibilities)),
            messages=tuple(sorted(result.messages)),
            fields=tuple(sorted(_field_path(reader_json, loc) for loc in result.locations)),
        )
    ]


def check_compatibility(
    new_schema: str | dict[str, Any],
    earlier: Sequence[tuple[int, str | dict[str, Any]]],
    level: CompatibilityLevel,
) -> list[Incompatibility]:
    """Check ``new_schema`` against earlier ``(version, schema)`` pairs, oldest first.

    Returns the incompatibilities found (empty when compatible). Non-transitive levels check
    only the latest earlier version.
    """
    if level is CompatibilityLevel.NONE or not earlier:
        return []
    new = parse_schema(new_schema)
    targets = list(earlier) if level.transitive else [earlier[-1]]
    found: list[Incompatibility] = []
    for version, old_text in targets:
        old = parse_schema(old_text)
        if level.checks_backward:
            found.extend(_pair(reader=new, writer=old, version=version, direction="backward"))
        if level.checks_forward:
            found.extend(_pair(reader=old, writer=new, version=version, direction="forward"))
    return found
