"""PostgreSQL's batch statements of the inbox: one statement per table, whatever the batch size.

A batch's rows travel as one array parameter per column and ``unnest`` turns them back into
rows, so claiming 500 inputs is one short statement and one round trip (a multi-row
``VALUES`` list would be 500 x 8 bound parameters, a statement text too long for psycopg's
query cache, split into pages). ``WITH ORDINALITY ... ORDER BY`` keeps the rows in the order
given: the claims are inserted in dedupe-key order, the one lock order every instance uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from alchemiser_common.inbox.model import InboxEntry
from alchemiser_common.inbox.schema import encode_headers

__all__ = ["claim_rows", "insert_outputs"]

# Driver-level SQL: ``%(name)b`` passes an array in psycopg's binary format, which needs no
# per-element quoting (text-format arrays escape every element with a regular expression).
_CLAIM = (
    "INSERT INTO inbox (consumer, dedupe_key, content_hash, event_id, source_topic,"
    " source_partition, source_offset, processed_at)"
    " SELECT %(consumer)s, k, h, e, t, p, o, %(processed_at)s"
    " FROM unnest(%(keys)b::text[], %(hashes)b::text[], %(event_ids)b::text[],"
    " %(topics)b::text[], %(partitions)b::int[], %(offsets)b::bigint[])"
    " WITH ORDINALITY AS row(k, h, e, t, p, o, n)"
    " ORDER BY n"
    " ON CONFLICT (consumer, dedupe_key) DO NOTHING"
    " RETURNING dedupe_key"
)

_OUTPUTS = (
    "INSERT INTO inbox_output (consumer, dedupe_key, seq, topic, key, value, headers)"
    " SELECT %(consumer)s, d, s, t, k, v, h"
    " FROM unnest(%(keys)b::text[], %(seqs)b::int[], %(topics)b::text[],"
    " %(record_keys)b::bytea[], %(values)b::bytea[], %(headers)b::text[])"
    " AS row(d, s, t, k, v, h)"
)


def claim_rows(
    connection: Connection, consumer: str, entries: Sequence[InboxEntry], now: datetime
) -> set[str]:
    """Insert the entries' inbox rows, in the given order; the keys this statement inserted."""
    parameters: dict[str, Any] = {
        "consumer": consumer,
        "processed_at": now,
        "keys": [entry.dedupe_key for entry in entries],
        "hashes": [entry.content_hash for entry in entries],
        "event_ids": [entry.event_id for entry in entries],
        "topics": [entry.topic for entry in entries],
        "partitions": [entry.partition for entry in entries],
        "offsets": [entry.offset for entry in entries],
    }
    return {row.dedupe_key for row in connection.exec_driver_sql(_CLAIM, parameters)}


def insert_outputs(connection: Connection, consumer: str, entries: Sequence[InboxEntry]) -> None:
    """Store every output of ``entries`` (``seq`` in production order) in one statement."""
    columns: dict[str, list[Any]] = {
        name: [] for name in ("keys", "seqs", "topics", "record_keys", "values", "headers")
    }
    for entry in entries:
        for seq, output in enumerate(entry.outputs):
            columns["keys"].append(entry.dedupe_key)
            columns["seqs"].append(seq)
            columns["topics"].append(output.topic)
            columns["record_keys"].append(output.key)
            columns["values"].append(output.value)
            columns["headers"].append(encode_headers(output.headers))
    if columns["keys"]:
        connection.exec_driver_sql(_OUTPUTS, {"consumer": consumer, **columns})
