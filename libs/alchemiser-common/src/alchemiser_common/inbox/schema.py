"""The inbox tables (SQLAlchemy Core) and the encoding of stored headers.

``inbox`` holds one row per handled input, keyed ``(consumer, dedupe_key)``: the primary key is
what detects a duplicate. ``inbox_output`` holds that input's output records in ``seq`` order,
byte for byte. Both are created by the migrations in ``migrations/versions``; keep the two in
step (a test compares them).
"""

from __future__ import annotations

import base64
import binascii
import json

import sqlalchemy as sa

from alchemiser_common.inbox.exceptions import InboxStoreError

__all__ = ["decode_headers", "encode_headers", "inbox_output_table", "inbox_table", "metadata"]

metadata = sa.MetaData()
"""The inbox tables only; a service's own state tables live in its own metadata."""

inbox_table = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(), nullable=False),
    sa.Column("dedupe_key", sa.String(), nullable=False),
    sa.Column("content_hash", sa.String(), nullable=False),
    sa.Column("event_id", sa.String(), nullable=False),
    sa.Column("source_topic", sa.String(), nullable=False),
    sa.Column("source_partition", sa.Integer(), nullable=False),
    sa.Column("source_offset", sa.BigInteger(), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("consumer", "dedupe_key", name="pk_inbox"),
    sa.Index("ix_inbox_processed_at", "processed_at"),
)

inbox_output_table = sa.Table(
    "inbox_output",
    metadata,
    sa.Column("consumer", sa.String(), nullable=False),
    sa.Column("dedupe_key", sa.String(), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("topic", sa.String(), nullable=False),
    sa.Column("key", sa.LargeBinary(), nullable=True),
    sa.Column("value", sa.LargeBinary(), nullable=False),
    sa.Column("headers", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("consumer", "dedupe_key", "seq", name="pk_inbox_output"),
    sa.ForeignKeyConstraint(
        ["consumer", "dedupe_key"],
        ["inbox.consumer", "inbox.dedupe_key"],
        name="fk_inbox_output_inbox",
        ondelete="CASCADE",
    ),
)


def encode_headers(headers: tuple[tuple[str, bytes], ...]) -> str:
    """Encode headers as a JSON list of ``[name, base64(value)]`` pairs (order kept)."""
    return json.dumps(
        [[name, base64.b64encode(value).decode("ascii")] for name, value in headers],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    """Inverse of :func:`encode_headers`; raises :class:`InboxStoreError` on a corrupt column."""
    try:
        pairs = json.loads(text)
        return tuple(
            (str(name), base64.b64decode(value.encode("ascii"), validate=True))
            for name, value in pairs
        )
    except (ValueError, TypeError, AttributeError, binascii.Error) as err:
        raise InboxStoreError(f"corrupt stored headers {text[:200]!r}") from err
