"""Errors raised by the strategy service outside its pure domain.

The handler turns a :class:`SignalUnavailableError` (or any other non-transient
``AlchemiserError``) into a ``WorkflowFailed`` event; :class:`StrategyConfigError` stops the
process at start-up; :class:`CliInputError` ends a CLI command with exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alchemiser_common.errors import AlchemiserError, ConfigurationError

__all__ = [
    "CliInputError",
    "MarketDataMissingError",
    "SignalUnavailableError",
    "StrategyConfigError",
    "StrategyServiceError",
]


class StrategyServiceError(AlchemiserError):
    """Root of the strategy service's own errors."""


class SignalUnavailableError(StrategyServiceError):
    """No signal can be produced for this workflow; ``details`` and ``symbols`` explain why."""

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, str] | None = None,
        symbols: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.details = dict(details or {})
        self.symbols = tuple(sorted(set(symbols)))


class EveryStrategyFailedError(SignalUnavailableError):
    """No strategy file could be evaluated: no signal (never an all-cash one)."""


class MarketDataMissingError(SignalUnavailableError):
    """The market data has no bar on the as-of date for some (or every) required symbol."""


class StrategyConfigError(StrategyServiceError, ConfigurationError):
    """A strategy setting or strategy file is invalid: the service must not start."""


class CliInputError(StrategyServiceError):
    """A CLI argument or input file is unusable (the message is printed as one line)."""
