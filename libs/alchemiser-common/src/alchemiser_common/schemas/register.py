"""Register the catalog's schemas with a schema registry (the deploy step).

Every released version is registered oldest first, so the registry's version history matches
the files and its compatibility rules see the same evolution as the offline gate. Registration
is idempotent: a schema already registered under the subject gets its existing id back.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.schemas.catalog import SchemaCatalog
from alchemiser_common.serde import REGISTRY_TRANSPORT_ERRORS

__all__ = ["RegistrationRefusedError", "RegistrationResult", "register_all"]

_HTTP_CONFLICT = 409


class RegistrationRefusedError(AlchemiserError):
    """The registry refused a schema (incompatible, invalid) or could not be reached."""


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """One registered schema file and the id the registry gave it."""

    subject: str
    file_version: int
    schema_id: int


def register_all(url: str, catalog: SchemaCatalog) -> list[RegistrationResult]:
    """Register every version of every subject in ``catalog`` at the registry at ``url``."""
    client = SchemaRegistryClient({"url": url})
    results: list[RegistrationResult] = []
    for subject in catalog.subjects():
        for version in catalog.versions(subject):
            schema = Schema(version.text(), "AVRO")
            try:
                schema_id = client.register_schema(subject, schema, normalize_schemas=True)
            except SchemaRegistryError as err:
                if err.http_status_code == _HTTP_CONFLICT:
                    raise RegistrationRefusedError(
                        f"{subject} v{version.version} is incompatible with the versions "
                        f"already registered (HTTP 409): {err.error_message}"
                    ) from err
                raise RegistrationRefusedError(
                    f"{subject} v{version.version} refused (HTTP {err.http_status_code}, "
                    f"code {err.error_code}): {err.error_message}"
                ) from err
            except REGISTRY_TRANSPORT_ERRORS as err:
                message = f"schema registry at {url} unreachable: {err}"
                raise RegistrationRefusedError(message) from err
            results.append(RegistrationResult(subject, version.version, schema_id))
    return results
