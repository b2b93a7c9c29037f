"""The project's schema registry: the Confluent Schema Registry REST API over SQLite.

Production talks to Confluent's registry; development and tests run this one, which answers
what clients call (register, look up, versions, compatibility checks, levels, deletes) with the
same bodies and error codes, and enforces compatibility with :mod:`alchemiser_common.avro_compat`.

Run it with ``alchemiser registry serve --port 8081 --data-dir DIR`` or
``python -m alchemiser_registry serve ...``.
"""

from __future__ import annotations

from alchemiser_registry.app import create_app
from alchemiser_registry.server import serve
from alchemiser_registry.store import SchemaStore, SubjectVersion

__all__ = ["SchemaStore", "SubjectVersion", "create_app", "serve"]
