"""Errors raised by the ledger service.

The domain raises these for inputs it must not book: a malformed fill, target or snapshot, a
sell of more than a strategy holds, a missing close. Each means a broken invariant upstream
(or a ledger that missed a fill), never a business outcome to retry.
"""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, TransientError

__all__ = [
    "InvalidLedgerInputError",
    "LedgerError",
    "LedgerUnavailableError",
    "MissingCloseError",
    "OversellError",
]


class LedgerError(AlchemiserError):
    """Root of the ledger service's errors: an input or a book state the ledger rejects."""


class InvalidLedgerInputError(LedgerError):
    """A fill, target, split or snapshot is malformed (sign, precision, sum or order)."""


class OversellError(LedgerError):
    """A sell part exceeds the quantity its strategy holds of the symbol."""


class MissingCloseError(LedgerError):
    """A held symbol has no closing price to value it at."""


class LedgerUnavailableError(TransientError):
    """The ledger's database cannot be reached now: the input is handled again later."""
