"""Errors of the schema registry, each carrying its HTTP status and Confluent error code.

The codes are those of the Confluent Schema Registry REST API, so clients such as
confluent-kafka's ``SchemaRegistryClient`` see the same ``error_code`` from either server.
"""

from __future__ import annotations

from typing import ClassVar

from alchemiser_common.errors import AlchemiserError, SchemaCompatibilityError, SchemaError

__all__ = [
    "CompatibilityNotConfiguredError",
    "IncompatibleSchemaError",
    "InvalidCompatibilityLevelError",
    "InvalidRequestError",
    "InvalidSchemaError",
    "InvalidVersionError",
    "RegistryError",
    "SchemaNotFoundError",
    "SubjectNotFoundError",
    "SubjectNotSoftDeletedError",
    "SubjectSoftDeletedError",
    "VersionNotFoundError",
    "VersionNotSoftDeletedError",
    "VersionSoftDeletedError",
]


class RegistryError(AlchemiserError):
    """A request the registry refuses; ``status`` and ``error_code`` go into the reply."""

    status: ClassVar[int] = 500
    error_code: ClassVar[int] = 50001


class SubjectNotFoundError(RegistryError):
    """The subject has no (live) version."""

    status, error_code = 404, 40401


class VersionNotFoundError(RegistryError):
    """The subject exists but not the version."""

    status, error_code = 404, 40402


class SchemaNotFoundError(RegistryError):
    """No schema with that id, or the schema is not registered under the subject."""

    status, error_code = 404, 40403


class SubjectSoftDeletedError(RegistryError):
    """The subject is already soft-deleted; only a permanent delete is possible."""

    status, error_code = 404, 40404


class SubjectNotSoftDeletedError(RegistryError):
    """A permanent delete of a subject that was not soft-deleted first."""

    status, error_code = 404, 40405


class VersionSoftDeletedError(RegistryError):
    """The version is already soft-deleted; only a permanent delete is possible."""

    status, error_code = 404, 40406


class VersionNotSoftDeletedError(RegistryError):
    """A permanent delete of a version that was not soft-deleted first."""

    status, error_code = 404, 40407


class CompatibilityNotConfiguredError(RegistryError):
    """The subject has no compatibility level of its own (ask with ``defaultToGlobal``)."""

    status, error_code = 404, 40408


class IncompatibleSchemaError(RegistryError, SchemaCompatibilityError):
    """The schema breaks the subject's compatibility level against an earlier version."""

    status, error_code = 409, 409


class InvalidSchemaError(RegistryError, SchemaError):
    """The schema is not valid JSON, not valid Avro, or of an unsupported type."""

    status, error_code = 422, 42201


class InvalidVersionError(RegistryError):
    """The version is neither a positive integer, ``-1`` nor ``latest``."""

    status, error_code = 422, 42202


class InvalidCompatibilityLevelError(RegistryError):
    """The compatibility level is not one of the seven levels."""

    status, error_code = 422, 42203


class InvalidRequestError(RegistryError):
    """The request body is not a JSON object of the expected shape."""

    status, error_code = 400, 400
