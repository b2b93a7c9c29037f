"""One input's inbox transaction as the caller sees it, and the store's error translation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from alchemiser_common.db import is_transient_database_error
from alchemiser_common.inbox.exceptions import (
    InboxStoreError,
    InboxUnavailableError,
    InboxUsageError,
)
from alchemiser_common.inbox.model import ClaimOutcome, StoredOutput
from alchemiser_common.inbox.schema import encode_headers, inbox_output_table

__all__ = ["DRIVER_ERRORS", "InboxTransaction", "describe_error", "translated_errors"]

DRIVER_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error, sqlite3.Error)
"""Every exception type a database call can raise (SQLAlchemy-wrapped or raw driver)."""


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn database failures of the store's own statements into inbox errors."""
    try:
        yield
    except DRIVER_ERRORS as err:
        detail = describe_error(err)
        if is_transient_database_error(err):
            raise InboxUnavailableError(f"{action}: database unavailable: {detail}") from err
        raise InboxStoreError(f"{action}: {detail}") from err


def describe_error(err: BaseException) -> str:
    """The driver error's class and first line, for messages."""
    origin = getattr(err, "orig", None) or err
    text = str(origin).strip().splitlines()
    return f"{type(origin).__name__}: {text[0] if text else ''}"


class InboxTransaction:
    """One input's open database transaction and what its claim found.

    ``outcome`` is the claim's result; ``connection`` the SQLAlchemy connection inside the
    transaction (state writes through it commit or roll back with the inbox row);
    ``stored_outputs`` the first run's outputs in order (DUPLICATE, else empty);
    ``stored_content_hash`` / ``stored_event_id`` those of the committed row (DUPLICATE and
    CONFLICT, else ``None``); ``stored_published`` whether the outputs are known to be committed
    to Kafka already (see :meth:`InboxStore.mark_published`), so a duplicate need not re-emit.
    """

    def __init__(
        self,
        *,
        consumer: str,
        dedupe_key: str,
        content_hash: str,
        outcome: ClaimOutcome,
        connection: Connection,
        stored_outputs: tuple[StoredOutput, ...] = (),
        stored_content_hash: str | None = None,
        stored_event_id: str | None = None,
        stored_published: bool = False,
    ) -> None:
        self.consumer = consumer
        self.dedupe_key = dedupe_key
        self.content_hash = content_hash
        self.outcome = outcome
        self.connection = connection
        self.stored_outputs = stored_outputs
        self.stored_content_hash = stored_content_hash
        self.stored_event_id = stored_event_id
        self.stored_published = stored_published
        self._recorded: list[StoredOutput] = []
        self._open = True

    @property
    def recorded_outputs(self) -> tuple[StoredOutput, ...]:
        """The outputs recorded in this transaction so far (NEW only), in order."""
        return tuple(self._recorded)

    def record_outputs(self, outputs: Sequence[StoredOutput]) -> None:
        """Store ``outputs`` with the claimed row, after any recorded before (NEW only).

        Written at once inside the transaction; they commit with the row when the block ends.
        """
        if not self._open:
            raise InboxUsageError("record_outputs called after the inbox transaction ended")
        if self.outcome is not ClaimOutcome.NEW:
            raise InboxUsageError(f"cannot record outputs for a {self.outcome.value} input")
        outputs = tuple(outputs)
        if not outputs:
            return
        first = len(self._recorded)
        rows = [
            {
                "consumer": self.consumer,
                "dedupe_key": self.dedupe_key,
                "seq": first + index,
                "topic": output.topic,
                "key": output.key,
                "value": output.value,
                "headers": encode_headers(output.headers),
            }
            for index, output in enumerate(outputs)
        ]
        with translated_errors(f"recording outputs of {self.consumer}/{self.dedupe_key}"):
            self.connection.execute(sa.insert(inbox_output_table), rows)
        self._recorded.extend(outputs)

    def _close(self) -> None:
        self._open = False
