"""The released Avro schemas (package data, ``avro/<topic>/v<N>.avsc``) and the offline gate."""

from __future__ import annotations

from alchemiser_common.schemas.catalog import (
    PACKAGED_SCHEMAS_DIR,
    SCHEMAS_DIR_ENV,
    SUBJECT_SUFFIX,
    SchemaCatalog,
    SchemaVersion,
    find_schemas_dir,
    subject_for_topic,
    topic_for_subject,
)
from alchemiser_common.schemas.check import (
    DEFAULT_LEVEL,
    CheckReport,
    SchemaProblem,
    check_all,
    check_catalog,
)

__all__ = [
    "DEFAULT_LEVEL",
    "PACKAGED_SCHEMAS_DIR",
    "SCHEMAS_DIR_ENV",
    "SUBJECT_SUFFIX",
    "CheckReport",
    "SchemaCatalog",
    "SchemaProblem",
    "SchemaVersion",
    "check_all",
    "check_catalog",
    "find_schemas_dir",
    "subject_for_topic",
    "topic_for_subject",
]
