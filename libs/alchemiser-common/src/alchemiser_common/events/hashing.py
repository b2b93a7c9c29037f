"""Deterministic identities: canonical JSON, content hashes and derived event ids.

A handler that runs twice on the same input must produce byte-identical identities, so
nothing here reads a clock, a random source or the iteration order of a set. Content hashes
are SHA-256 (lower-case hex) over the canonical JSON of the content plus the workflow's
correlation id and a tag naming the kind of hash; lists whose order means nothing are sorted
by their canonical form first, so two equal contents in a different order hash equally.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Set
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid5

from pydantic import BaseModel

from alchemiser_common.events.payloads import RebalancePlan, StrategySignal, TargetWeight

__all__ = [
    "EVENT_ID_NAMESPACE",
    "canonical_json",
    "derive_event_id",
    "execution_plan_hash",
    "plan_hash",
    "signal_hash",
]

EVENT_ID_NAMESPACE = UUID("6f1c7a52-3d0e-5b8a-9c41-2e7d8f5a0b93")
"""Fixed UUIDv5 namespace of the project's derived event ids. Never change it: ids of
re-emitted events would stop matching the originals."""


_PASS_THROUGH = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    """Reduce a value to JSON types deterministically (see :func:`canonical_json`)."""
    kind = type(value)
    if kind in _PASS_THROUGH:  # the common case first: no isinstance chain
        return value
    if kind is dict:
        return {str(key): _plain(item) for key, item in value.items()}
    if kind is Decimal:
        return _plain_scalar(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Set):
        return _sorted_plain(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return _plain_scalar(value)


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, float):
        raise TypeError("floats are not hashed; use Decimal for money, weights and quantities")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot hash non-finite Decimal {value}")
        text = format(value, "f")  # exact: no context rounding, no exponent
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("cannot hash a naive datetime")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | UUID):
        return str(value)  # ISO 8601 for a date, the canonical hyphenated form for a UUID
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def _dumps(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _sorted_plain(items: Iterable[Any]) -> list[Any]:
    """Canonical forms of ``items``, sorted by their canonical JSON (order-independent)."""
    plain = [_plain(item) for item in items]
    return sorted(plain, key=_dumps)


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to canonical UTF-8 JSON bytes.

    Keys sorted, no whitespace; pydantic models dumped by field; Decimals as normalised
    fixed-point strings (``Decimal("1.500")`` -> ``"1.5"``, ``Decimal("1E+2")`` -> ``"100"``);
    dates and aware datetimes (in UTC) in ISO 8601; UUIDs as strings; enums by value; sets sorted.
    Sequences keep their order (sort first where order means nothing). Floats and naive
    datetimes are refused.
    """
    return _dumps(_plain(obj))


def _digest(kind: str, correlation_id: UUID, content: Mapping[str, Any]) -> str:
    document = {"kind": kind, "correlation_id": str(correlation_id), "content": content}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def signal_hash(
    consolidated_portfolio: Iterable[TargetWeight],
    signals: Iterable[StrategySignal],
    correlation_id: UUID,
) -> str:
    """Hash of a workflow's signals: the consolidated portfolio and per-strategy signals.

    Both lists are sorted before hashing, so their order does not matter.
    """
    content = {
        "consolidated_portfolio": _sorted_plain(consolidated_portfolio),
        "signals": _sorted_plain(signals),
    }
    return _digest("signal", correlation_id, content)


def plan_hash(plan: RebalancePlan, correlation_id: UUID) -> str:
    """Hash of a rebalance plan; the items are sorted, so their listing order does not matter.

    Execution order is derived from each item's action and priority, which are hashed.
    """
    content = _plain(plan)
    content["items"] = _sorted_plain(plan.items)
    return _digest("plan", correlation_id, content)


def execution_plan_hash(
    orders: Iterable[BaseModel | Mapping[str, Any]], correlation_id: UUID
) -> str:
    """Hash of the orders execution intends to place (one record or mapping per leg).

    Pass the planned legs (symbol, side, quantity, client order id, ...), not their fill
    results, so a re-run of the same plan gives the same hash. Order does not matter.
    """
    return _digest("execution_plan", correlation_id, {"orders": _sorted_plain(orders)})


def derive_event_id(causing_event_id: UUID, output_event_type: str) -> UUID:
    """The id of the ``output_event_type`` event caused by ``causing_event_id`` (UUIDv5).

    A handler that processes the same input twice emits events with the same ids, so
    downstream consumers recognise the copy.
    """
    if not output_event_type:
        raise ValueError("output_event_type must not be empty")
    return uuid5(EVENT_ID_NAMESPACE, f"{causing_event_id}/{output_event_type}")
