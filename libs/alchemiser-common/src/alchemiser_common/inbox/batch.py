"""Many inputs in one database transaction: the loop's fast path.

One batch = one connection and one transaction: a single multi-row
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` claims every input's key (the primary key still
decides), one ``SELECT`` reads the rows that already existed, handlers write their state through
:attr:`InboxBatch.connection`, and every output is stored with one ``executemany`` just before
the commit. Leaving the block normally commits everything; an exception rolls everything back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alchemiser_common.inbox.exceptions import InboxUnavailableError, InboxUsageError
from alchemiser_common.inbox.model import ClaimOutcome, StoredOutput
from alchemiser_common.inbox.schema import (
    decode_headers,
    encode_headers,
    inbox_output_table,
    inbox_table,
)
from alchemiser_common.inbox.transaction import translated_errors

if TYPE_CHECKING:
    from alchemiser_common.inbox.store import InboxStore

__all__ = ["Claim", "ClaimRequest", "InboxBatch"]


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One input to claim: its key, content hash and where it came from."""

    dedupe_key: str
    content_hash: str
    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming one key found."""

    outcome: ClaimOutcome
    stored_outputs: tuple[StoredOutput, ...] = ()
    stored_content_hash: str | None = None
    stored_published: bool = False


class InboxBatch:
    """One open database transaction claiming many inputs of one consumer."""

    def __init__(self, store: InboxStore, consumer: str, connection: Connection) -> None:
        self._store = store
        self.consumer = consumer
        self.connection = connection
        self._outputs: dict[str, list[StoredOutput]] = {}
        self._new: set[str] = set()

    def claim_many(self, requests: Sequence[ClaimRequest]) -> dict[str, Claim]:
        """Claim every request's key; one result per distinct key (the first request wins)."""
        first: dict[str, ClaimRequest] = {}
        for request in requests:
            first.setdefault(request.dedupe_key, request)
        if not first:
            return {}
        now = self._store.now()
        rows = [
            {
                "consumer": self.consumer,
                "dedupe_key": request.dedupe_key,
                "content_hash": request.content_hash,
                "event_id": request.event_id,
                "source_topic": request.topic,
                "source_partition": request.partition,
                "source_offset": request.offset,
                "processed_at": now,
            }
            for request in first.values()
        ]
        with translated_errors(f"claiming {len(rows)} input(s) of {self.consumer}"):
            inserted = {
                row.dedupe_key
                for row in self.connection.execute(self._store.claim_many_statement(), rows)
            }
            existing = self._existing(set(first) - inserted)
        self._new.update(inserted)
        claims = {key: Claim(ClaimOutcome.NEW) for key in inserted}
        for key, row in existing.items():
            if row["content_hash"] != first[key].content_hash:
                claims[key] = Claim(ClaimOutcome.CONFLICT, stored_content_hash=row["content_hash"])
            else:
                claims[key] = Claim(
                    ClaimOutcome.DUPLICATE,
                    stored_outputs=row["outputs"],
                    stored_content_hash=row["content_hash"],
                    stored_published=row["published"],
                )
        return claims

    def _existing(self, keys: set[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        rows = self.connection.execute(
            sa.select(
                inbox_table.c.dedupe_key, inbox_table.c.content_hash, inbox_table.c.published_at
            ).where(inbox_table.c.consumer == self.consumer, inbox_table.c.dedupe_key.in_(keys))
        ).all()
        found: dict[str, dict[str, Any]] = {
            row.dedupe_key: {
                "content_hash": row.content_hash,
                "published": row.published_at is not None,
                "outputs": [],
            }
            for row in rows
        }
        missing = keys - set(found)
        if missing:  # deleted between our insert and read (a retention purge): retry the batch
            raise InboxUnavailableError(f"inbox rows {sorted(missing)[:3]} vanished; retry")
        unpublished = [key for key, row in found.items() if not row["published"]]
        if unpublished:
            outputs = self.connection.execute(
                sa.select(inbox_output_table)
                .where(
                    inbox_output_table.c.consumer == self.consumer,
                    inbox_output_table.c.dedupe_key.in_(unpublished),
                )
                .order_by(inbox_output_table.c.dedupe_key, inbox_output_table.c.seq)
            )
            for row in outputs:
                found[row.dedupe_key]["outputs"].append(
                    StoredOutput(
                        topic=row.topic,
                        key=None if row.key is None else bytes(row.key),
                        value=bytes(row.value),
                        headers=decode_headers(row.headers),
                    )
                )
        for entry in found.values():
            entry["outputs"] = tuple(entry["outputs"])
        return found

    def record_outputs(self, dedupe_key: str, outputs: Sequence[StoredOutput]) -> None:
        """Keep ``outputs`` for a key this batch claimed NEW; written just before the commit."""
        if dedupe_key not in self._new:
            raise InboxUsageError(f"{dedupe_key} was not claimed NEW in this batch")
        self._outputs.setdefault(dedupe_key, []).extend(outputs)

    def flush(self) -> None:
        """Write every recorded output (one ``executemany``); called by the store at commit."""
        rows = [
            {
                "consumer": self.consumer,
                "dedupe_key": key,
                "seq": seq,
                "topic": output.topic,
                "key": output.key,
                "value": output.value,
                "headers": encode_headers(output.headers),
            }
            for key, outputs in self._outputs.items()
            for seq, output in enumerate(outputs)
        ]
        if rows:
            with translated_errors(f"recording outputs of {len(self._outputs)} input(s)"):
                self.connection.execute(sa.insert(inbox_output_table), rows)
        self._outputs.clear()
