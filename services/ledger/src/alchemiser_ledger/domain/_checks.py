"""Invariant checks shared by the domain's value types (private to the package)."""

from __future__ import annotations

from decimal import Decimal

from alchemiser_ledger.exceptions import InvalidLedgerInputError

__all__ = ["check_decimal", "check_name"]


def check_decimal(value: object, what: str) -> Decimal:
    """Return ``value`` if it is a finite Decimal, else raise :class:`InvalidLedgerInputError`."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidLedgerInputError(f"{what} must be a finite Decimal, got {value!r}")
    return value


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a non-blank trimmed string, else raise."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidLedgerInputError(f"{what} must be a non-blank trimmed string: {value!r}")
    return value
