"""Errors of the inbox store.

Which errors are transient (retry the record with backoff, do not dead-letter it) is decided
by :func:`alchemiser_common.db.is_transient_database_error`; the store raises
:class:`InboxUnavailableError` for those and :class:`InboxStoreError` for the rest.
"""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, TransientError

__all__ = [
    "InboxError",
    "InboxStoreError",
    "InboxUnavailableError",
    "InboxUsageError",
    "TransientError",
]


class InboxError(AlchemiserError):
    """Base of the errors raised by the inbox store."""


class InboxUnavailableError(InboxError, TransientError):
    """The database is unreachable or refused the transaction for now; nothing was committed
    (or, for a failed commit, it is unknown: the retry finds the row and re-emits)."""


class InboxStoreError(InboxError):
    """The database rejected a statement for a non-transient reason (schema missing, bug)."""


class InboxUsageError(InboxError):
    """The inbox API was misused, e.g. outputs recorded for a duplicate or after the end."""
