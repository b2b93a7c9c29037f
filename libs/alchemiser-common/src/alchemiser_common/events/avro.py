"""Conversion between event models and the plain dicts fastavro reads and writes.

Only the serde edge uses this module. ``to_avro_dict`` gives fastavro what its logical types
expect (``Decimal``, aware ``datetime``, ``date``, ``UUID``; enums as their symbol strings).
``from_avro_dict`` validates what fastavro returns: the same types, enums as strings. It
validates in pydantic's lax mode, which here only turns enum symbols into enum members,
after refusing floats (no schema of this project has a float or double field, so a float
means the dict was not produced by fastavro from our schemas).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from alchemiser_common.errors import DeadLetterReason, DeserializationError
from alchemiser_common.events.envelope import Event

__all__ = ["from_avro_dict", "to_avro_dict"]

E = TypeVar("E", bound=Event)


_LEAVES = frozenset({str, int, bool, type(None), Decimal, datetime, date, UUID})


def _avro_value(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:  # the hot path: no isinstance chain for plain values
        return value
    # containers test their items' type inline: most items are leaves, and a call per leaf
    # costs more than the test
    if kind is dict:
        return {
            key: item if type(item) in _LEAVES else _avro_value(item) for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _LEAVES else _avro_value(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: _avro_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_avro_value(item) for item in value]
    return value


def _reject_floats(value: Any, path: str) -> None:
    # leaves of a type that cannot be a float are skipped inline (no call, no path string)
    if isinstance(value, float):
        raise DeserializationError(
            DeadLetterReason.FLOAT_VALUE, f"float at {path}: Avro events carry Decimals"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(item) not in _LEAVES:
                _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if type(item) not in _LEAVES:
                _reject_floats(item, f"{path}[{index}]")


def to_avro_dict(event: Event) -> dict[str, Any]:
    """The event as a dict ready for ``fastavro.schemaless_writer`` with its schema."""
    data: dict[str, Any] = _avro_value(event.model_dump(mode="python"))
    return data


def from_avro_dict(cls: type[E], data: Mapping[str, Any]) -> E:
    """Validate a dict read by fastavro into an event of ``cls``.

    Raises :class:`DeserializationError` (reason ``invalid_event``) when the data does not
    satisfy the model, e.g. a naive timestamp or a field the model does not know.
    """
    _reject_floats(data, cls.__name__)
    try:
        return cls.model_validate(dict(data), strict=False)
    except ValidationError as err:
        raise DeserializationError(
            DeadLetterReason.INVALID_EVENT, f"record does not validate as {cls.__name__}: {err}"
        ) from err
