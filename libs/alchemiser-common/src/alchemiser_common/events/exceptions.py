"""Errors raised by the event contracts."""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError

__all__ = ["UnknownEventError"]


class UnknownEventError(AlchemiserError, LookupError):
    """No event class is registered for the given event type or topic."""
