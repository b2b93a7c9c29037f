"""The Confluent Schema Registry REST endpoints, translated onto :class:`SchemaStore`.

Request bodies are read as JSON whatever their content type (clients send
``application/vnd.schemaregistry.v1+json``). Store calls run in the thread pool; the store
serialises them. Only ``AVRO`` schemas are accepted; any other ``schemaType`` and schema
references are refused with 422 / 42201 (invalid schema), as Confluent does for a schema type
it has no provider for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from alchemiser_common.avro_compat import CompatibilityLevel, Incompatibility
from alchemiser_registry.exceptions import (
    InvalidCompatibilityLevelError,
    InvalidRequestError,
    InvalidSchemaError,
    InvalidVersionError,
    SchemaNotFoundError,
)
from alchemiser_registry.store import SchemaStore, SubjectVersion

__all__ = ["SCHEMA_REGISTRY_MEDIA_TYPE", "router"]

SCHEMA_REGISTRY_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
_MAX_VERSION = 2**31 - 1

T = TypeVar("T")

router = APIRouter()


def _store(request: Request) -> SchemaStore:
    store: SchemaStore = request.app.state.store
    return store


Store = Annotated[SchemaStore, Depends(_store)]
Flag = Annotated[bool, Query()]


async def _run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(func, *args, **kwargs)


async def _body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (400 otherwise)."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidRequestError(f"Request body is not valid JSON: {err}") from err
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object")
    return body


async def _schema_text(request: Request) -> str:
    """The ``schema`` of a register, look-up or compatibility request (AVRO only)."""
    body = await _body(request)
    schema = body.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise InvalidSchemaError("Empty schema")
    schema_type = str(body.get("schemaType") or "AVRO").upper()
    if schema_type != "AVRO":
        raise InvalidSchemaError(f"Unsupported schema type {schema_type}: only AVRO is served")
    if body.get("references"):
        raise InvalidSchemaError("Schema references are not supported by this registry")
    return schema


def _version(text: str) -> int | None:
    """A version path segment: ``None`` for ``latest`` or ``-1``, else 1..2^31-1 (42202)."""
    if text in ("latest", "-1"):
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersionError(
            f"The specified version '{text}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"'
        )
    return number


def _schema_id(text: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise SchemaNotFoundError(f"Schema {text} not found") from err


def _level(body: dict[str, Any]) -> CompatibilityLevel:
    value = body.get("compatibility", body.get("compatibilityLevel"))
    try:
        return CompatibilityLevel(str(value).upper())
    except ValueError as err:
        valid = ", ".join(level.value for level in CompatibilityLevel)
        raise InvalidCompatibilityLevelError(
            f"Invalid compatibility level {value!r}. Valid values are {valid}"
        ) from err


def _registered(found: SubjectVersion) -> dict[str, Any]:
    return {
        "subject": found.subject,
        "version": found.version,
        "id": found.schema_id,
        "schema": found.schema,
    }


def _compatibility(problems: list[Incompatibility], verbose: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"is_compatible": not problems}
    if verbose:
        answer["messages"] = [problem.describe() for problem in problems]
    return answer


@router.get("/")
async def root() -> dict[str, Any]:
    """Confluent answers ``{}`` at the root; handy as a liveness probe."""
    return {}


@router.get("/schemas/types")
async def schema_types() -> list[str]:
    """The schema types this registry serves."""
    return ["AVRO"]


@router.get("/schemas/ids/{schema_id}")
async def get_schema(schema_id: str, store: Store) -> dict[str, Any]:
    """The schema with a global id."""
    return {"schema": await _run(store.schema, _schema_id(schema_id))}


@router.get("/schemas/ids/{schema_id}/versions")
async def get_schema_versions(
    schema_id: str, store: Store, deleted: Flag = False
) -> list[dict[str, Any]]:
    """The subject-version pairs using a schema."""
    pairs = await _run(store.usages, _schema_id(schema_id), deleted=deleted)
    return [{"subject": subject, "version": version} for subject, version in pairs]


@router.get("/schemas/ids/{schema_id}/subjects")
async def get_schema_subjects(schema_id: str, store: Store, deleted: Flag = False) -> list[str]:
    """The subjects using a schema."""
    pairs = await _run(store.usages, _schema_id(schema_id), deleted=deleted)
    return sorted({subject for subject, _ in pairs})


@router.get("/subjects")
async def list_subjects(
    store: Store,
    deleted: Flag = False,
    deleted_only: Flag = False,
    subject_prefix: Annotated[str, Query(alias="subjectPrefix")] = "",
) -> list[str]:
    """The subjects with a live version."""
    names = await _run(store.subjects, deleted=deleted, deleted_only=deleted_only)
    return [name for name in names if name.startswith(subject_prefix)]


@router.post("/subjects/{subject}/versions")
async def register(subject: str, request: Request, store: Store) -> dict[str, Any]:
    """Register a schema (idempotent) and answer its global id."""
    schema = await _schema_text(request)
    return {"id": await _run(store.register, subject, schema)}


@router.post("/subjects/{subject}")
async def lookup(subject: str, request: Request, store: Store, deleted: Flag = False) -> Any:
    """Whether a schema is registered under a subject, and as which version."""
    schema = await _schema_text(request)
    return _registered(await _run(store.lookup, subject, schema, deleted=deleted))


@router.get("/subjects/{subject}/versions")
async def list_versions(
    subject: str, store: Store, deleted: Flag = False, deleted_only: Flag = False
) -> list[int]:
    """The subject's version numbers."""
    return await _run(store.versions, subject, deleted=deleted, deleted_only=deleted_only)


@router.get("/subjects/{subject}/versions/{version}")
async def get_version(subject: str, version: str, store: Store, deleted: Flag = False) -> Any:
    """One version of a subject (``latest`` or ``-1`` for the newest)."""
    return _registered(await _run(store.version, subject, _version(version), deleted=deleted))


@router.get("/subjects/{subject}/versions/{version}/schema")
async def get_version_schema(
    subject: str, version: str, store: Store, deleted: Flag = False
) -> Response:
    """The bare schema text of one version."""
    found = await _run(store.version, subject, _version(version), deleted=deleted)
    return Response(content=found.schema, media_type=SCHEMA_REGISTRY_MEDIA_TYPE)


@router.delete("/subjects/{subject}")
async def delete_subject(subject: str, store: Store, permanent: Flag = False) -> list[int]:
    """Soft-delete a subject (or purge a soft-deleted one); answer the versions deleted."""
    return await _run(store.delete_subject, subject, permanent=permanent)


@router.delete("/subjects/{subject}/versions/{version}")
async def delete_version(subject: str, version: str, store: Store, permanent: Flag = False) -> int:
    """Soft-delete one version (or purge a soft-deleted one); answer its number."""
    return await _run(store.delete_version, subject, _version(version), permanent=permanent)


@router.post("/compatibility/subjects/{subject}/versions/{version}")
async def check_version(
    subject: str, version: str, request: Request, store: Store, verbose: Flag = False
) -> dict[str, Any]:
    """Whether a candidate is compatible with one version, in the level's direction."""
    schema = await _schema_text(request)
    return _compatibility(await _run(store.check, subject, schema, _version(version)), verbose)


@router.post("/compatibility/subjects/{subject}/versions")
async def check_all(
    subject: str, request: Request, store: Store, verbose: Flag = False
) -> dict[str, Any]:
    """Whether a candidate could be registered: every version the level's transitivity asks."""
    schema = await _schema_text(request)
    return _compatibility(await _run(store.check_all, subject, schema), verbose)


@router.get("/config")
async def get_global_config(store: Store) -> dict[str, str]:
    """The global compatibility level."""
    return {"compatibilityLevel": (await _run(store.global_level)).value}


@router.put("/config")
async def put_global_config(request: Request, store: Store) -> dict[str, str]:
    """Set the global compatibility level."""
    level = _level(await _body(request))
    await _run(store.set_global_level, level)
    return {"compatibility": level.value}


@router.delete("/config")
async def delete_global_config(store: Store) -> dict[str, str]:
    """Reset the global level to the default; answer the level it had."""
    return {"compatibilityLevel": (await _run(store.reset_global_level)).value}


@router.get("/config/{subject}")
async def get_subject_config(
    subject: str,
    store: Store,
    default_to_global: Annotated[bool, Query(alias="defaultToGlobal")] = False,
) -> dict[str, str]:
    """The subject's own level (40408 if unset, unless ``defaultToGlobal=true``)."""
    level = await _run(store.subject_level, subject, default_to_global=default_to_global)
    return {"compatibilityLevel": level.value}


@router.put("/config/{subject}")
async def put_subject_config(subject: str, request: Request, store: Store) -> dict[str, str]:
    """Set the subject's own compatibility level."""
    level = _level(await _body(request))
    await _run(store.set_subject_level, subject, level)
    return {"compatibility": level.value}


@router.delete("/config/{subject}")
async def delete_subject_config(subject: str, store: Store) -> dict[str, str]:
    """Remove the subject's own level; answer the level it had."""
    return {"compatibilityLevel": (await _run(store.delete_subject_level, subject)).value}
