"""How the inbox store reports database failures: transient ones retried, the rest raised."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import exc as sa_exc

from alchemiser_common.db import is_transient_database_error
from alchemiser_common.inbox.exceptions import InboxStoreError, InboxUnavailableError

__all__ = ["DRIVER_ERRORS", "describe_error", "translated_errors"]

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
