"""The pydantic models and the Avro schemas describe the same records, field by field.

The comparison walks both trees: record names, field names (both ways), optionality and
defaults, and kinds (Decimal precision/scale against the alias, timestamp-micros for
datetimes, date, uuid, enum symbols, arrays, maps, nested records).
"""

from __future__ import annotations

import copy
import types
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints
from uuid import UUID

import pytest
from pydantic import AwareDatetime, BaseModel

from alchemiser_common.events import EVENT_CLASSES, Event, RebalancePlanned, decimal_spec_of
from alchemiser_common.schemas import SchemaCatalog, subject_for_topic

NAMESPACE = "io.alchemiser.events"
_MISSING = object()
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _named_types(node: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Collect every named type defined in a schema tree, by short and full name."""
    if isinstance(node, list):
        for item in node:
            _named_types(item, found)
    elif isinstance(node, dict):
        if isinstance(node.get("type"), str) and node["type"] in {"record", "enum", "fixed"}:
            namespace = node.get("namespace", NAMESPACE)
            found[node["name"]] = node
            found[f"{namespace}.{node['name']}"] = node
        for value in node.values():
            if isinstance(value, list | dict):
                _named_types(value, found)
    return found


class _Comparer:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.named = _named_types(schema, {})
        self.problems: list[str] = []

    def resolve(self, avro: Any) -> Any:
        if isinstance(avro, str) and avro not in _PRIMITIVES:
            return self.named.get(avro, avro)
        if isinstance(avro, dict) and set(avro) == {"type"} and avro["type"] in _PRIMITIVES:
            return avro["type"]
        return avro

    def record(self, model: type[BaseModel], avro: Any, path: str) -> None:
        avro = self.resolve(avro)
        if not isinstance(avro, dict) or avro.get("type") != "record":
            self.problems.append(f"{path}: model {model.__name__} but schema {avro!r}")
            return
        if avro["name"] != model.__name__:
            self.problems.append(f"{path}: record {avro['name']} for model {model.__name__}")
        hints = get_type_hints(model, include_extras=True)
        fields = {field["name"]: field for field in avro["fields"]}
        for name in sorted(set(model.model_fields) - set(fields)):
            self.problems.append(f"{path}.{name}: in the model, not in the schema")
        for name in sorted(set(fields) - set(model.model_fields)):
            self.problems.append(f"{path}.{name}: in the schema, not in the model")
        for name in sorted(set(fields) & set(model.model_fields)):
            self.field(model, name, hints[name], fields[name], f"{path}.{name}")

    def field(
        self, model: type[BaseModel], name: str, hint: Any, avro: dict[str, Any], path: str
    ) -> None:
        info = model.model_fields[name]
        model_default = info.get_default(call_default_factory=True)
        if info.is_required():
            model_default = _MISSING
        hint, model_nullable = _split_optional(hint)
        avro_type = avro["type"]
        avro_nullable = isinstance(avro_type, list) and "null" in avro_type
        if model_nullable != avro_nullable:
            self.problems.append(f"{path}: nullable {model_nullable} in model, {avro_nullable}")
        if avro_nullable:
            branches = [branch for branch in avro_type if branch != "null"]
            if avro_type[0] != "null" or len(branches) != 1:
                self.problems.append(f"{path}: optional must be ['null', T], got {avro_type}")
            if avro.get("default", _MISSING) is not None or model_default is not None:
                self.problems.append(f"{path}: optional field must default to null in both")
            avro_type = branches[0] if branches else "null"
        elif "default" in avro and avro["default"] != model_default:
            self.problems.append(f"{path}: schema default {avro['default']!r} != {model_default!r}")
        self.kind(hint, avro_type, path)

    def kind(self, hint: Any, avro: Any, path: str) -> None:
        hint, metadata = _strip_annotated(hint)
        avro = self.resolve(avro)
        origin = get_origin(hint)
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            self.record(hint, avro, path)
        elif isinstance(hint, type) and issubclass(hint, Enum):
            symbols = [member.value for member in hint]
            if not (isinstance(avro, dict) and avro.get("type") == "enum"):
                self.problems.append(f"{path}: enum {hint.__name__} but schema {avro!r}")
            elif avro["name"] != hint.__name__ or avro["symbols"] != symbols:
                self.problems.append(f"{path}: enum {avro['name']} {avro['symbols']} != model")
        elif origin is list:
            (item,) = get_args(hint)
            if not (isinstance(avro, dict) and avro.get("type") == "array"):
                self.problems.append(f"{path}: list but schema {avro!r}")
            else:
                self.kind(item, avro["items"], f"{path}[]")
        elif origin is dict:
            key, value = get_args(hint)
            if key is not str or not (isinstance(avro, dict) and avro.get("type") == "map"):
                self.problems.append(f"{path}: dict[{key}, ...] but schema {avro!r}")
            else:
                self.kind(value, avro["values"], f"{path}{{}}")
        elif hint is Decimal:
            spec = decimal_spec_of(metadata)
            expected = (
                {"type": "bytes", "logicalType": "decimal"}
                | {"precision": spec.precision, "scale": spec.scale}
                if spec
                else "a DecimalSpec alias"
            )
            if avro != expected:
                self.problems.append(f"{path}: Decimal {expected} but schema {avro!r}")
        else:
            expected = _scalar_kind(hint)
            if avro != expected and not (expected == "int" and avro == "long"):
                self.problems.append(f"{path}: {hint!r} expects {expected!r}, schema {avro!r}")


def _strip_annotated(hint: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        metadata.extend(extra)
    return hint, metadata


def _split_optional(hint: Any) -> tuple[Any, bool]:
    if get_origin(hint) in {Union, types.UnionType}:
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _scalar_kind(hint: Any) -> Any:
    if get_origin(hint) is Literal and all(isinstance(arg, str) for arg in get_args(hint)):
        return "string"
    table: dict[Any, Any] = {
        str: "string",
        bool: "boolean",
        int: "int",
        UUID: {"type": "string", "logicalType": "uuid"},
        date: {"type": "int", "logicalType": "date"},
        datetime: {"type": "long", "logicalType": "timestamp-micros"},
        AwareDatetime: {"type": "long", "logicalType": "timestamp-micros"},
    }
    return table.get(hint, f"unsupported model type {hint!r}")


def _schema_for(cls: type[Event]) -> dict[str, Any]:
    return SchemaCatalog.discover().load(subject_for_topic(cls.TOPIC))


def _mismatches(cls: type[Event], schema: dict[str, Any]) -> list[str]:
    comparer = _Comparer(schema)
    comparer.record(cls, schema, cls.__name__)
    return comparer.problems


def _undocumented(node: Any, path: str = "") -> list[str]:
    missing: list[str] = []
    if isinstance(node, list):
        for item in node:
            missing += _undocumented(item, path)
    elif isinstance(node, dict):
        if node.get("type") == "record" and not node.get("doc"):
            missing.append(f"record {node.get('name')}")
        for field in node.get("fields", []) if node.get("type") == "record" else []:
            if not field.get("doc"):
                missing.append(f"field {node.get('name')}.{field['name']}")
            missing += _undocumented(field["type"], f"{path}.{field['name']}")
        if node.get("type") in {"array", "map"}:
            missing += _undocumented(node.get("items", node.get("values")), path)
    return missing


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_compare_when_model_and_schema_checked_then_they_agree(cls: type[Event]) -> None:
    schema = _schema_for(cls)

    assert _mismatches(cls, schema) == []
    assert schema["namespace"] == NAMESPACE


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_schema_when_inspected_then_every_record_and_field_documented(cls: type[Event]) -> None:
    assert _undocumented(_schema_for(cls)) == []


def test_catalog_when_listing_topics_then_one_schema_per_event_class() -> None:
    topics = SchemaCatalog.discover().topics()

    assert sorted(cls.TOPIC for cls in EVENT_CLASSES) == topics


def _plan_item_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    plan = next(f for f in schema["fields"] if f["name"] == "plan")["type"]
    items = next(f for f in plan["fields"] if f["name"] == "items")["type"]["items"]
    fields: list[dict[str, Any]] = items["fields"]
    return fields


def test_compare_when_schema_lacks_nested_field_then_mismatch_named() -> None:
    schema = copy.deepcopy(_schema_for(RebalancePlanned))
    fields = _plan_item_fields(schema)
    fields[:] = [field for field in fields if field["name"] != "priority"]

    assert _mismatches(RebalancePlanned, schema) == [
        "RebalancePlanned.plan.items[].priority: in the model, not in the schema"
    ]


def test_compare_when_schema_has_extra_field_then_mismatch_named() -> None:
    schema = copy.deepcopy(_schema_for(RebalancePlanned))
    schema["fields"].append({"name": "note", "type": "string", "doc": "x"})

    assert _mismatches(RebalancePlanned, schema) == [
        "RebalancePlanned.note: in the schema, not in the model"
    ]


def test_compare_when_decimal_scale_differs_then_mismatch_reported() -> None:
    schema = copy.deepcopy(_schema_for(RebalancePlanned))
    trade_amount = next(f for f in _plan_item_fields(schema) if f["name"] == "trade_amount")
    trade_amount["type"]["scale"] = 2

    problems = _mismatches(RebalancePlanned, schema)

    assert len(problems) == 1
    assert problems[0].startswith("RebalancePlanned.plan.items[].trade_amount: Decimal")


def test_compare_when_optionality_or_timestamp_kind_differs_then_mismatch_reported() -> None:
    schema = copy.deepcopy(_schema_for(RebalancePlanned))
    for field in schema["fields"]:
        if field["name"] == "causation_id":
            field["type"] = field["type"][1]  # required uuid instead of ["null", uuid]
            del field["default"]
        if field["name"] == "occurred_at":
            field["type"]["logicalType"] = "timestamp-millis"

    problems = _mismatches(RebalancePlanned, schema)

    assert [problem.split(":")[0] for problem in problems] == [
        "RebalancePlanned.causation_id",
        "RebalancePlanned.occurred_at",
    ]
