"""The inbox (dedupe) store: one effect per input, outputs kept for byte-exact re-emission.

See :mod:`alchemiser_common.inbox.store` for the protocol. Typical set-up::

    engine = create_engine_from_url(settings.database_url)
    store = inbox_store_for(engine)
    store.migrate()
"""

from alchemiser_common.inbox.exceptions import (
    InboxError,
    InboxStoreError,
    InboxUnavailableError,
    InboxUsageError,
    TransientError,
)
from alchemiser_common.inbox.model import (
    Claim,
    ClaimOutcome,
    InboxEntry,
    InboxRecord,
    StoredOutput,
    UnitOfWork,
    content_hash,
)
from alchemiser_common.inbox.schema import inbox_output_table, inbox_table, metadata
from alchemiser_common.inbox.store import (
    INBOX_VERSION_TABLE,
    InboxStore,
    PostgresInboxStore,
    SqliteInboxStore,
    inbox_store_for,
)

__all__ = [
    "INBOX_VERSION_TABLE",
    "Claim",
    "ClaimOutcome",
    "InboxEntry",
    "InboxError",
    "InboxRecord",
    "InboxStore",
    "InboxStoreError",
    "InboxUnavailableError",
    "InboxUsageError",
    "PostgresInboxStore",
    "SqliteInboxStore",
    "StoredOutput",
    "TransientError",
    "UnitOfWork",
    "content_hash",
    "inbox_output_table",
    "inbox_store_for",
    "inbox_table",
    "metadata",
]
