"""Errors raised by the portfolio service.

The planner raises these for inputs it must not plan from; the handler layer turns them into
a failed workflow (or a dead-letter record) with the message as the reason.
:class:`LedgerUnavailableError` is transient: the runtime handles the input again later.
"""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, ConfigurationError, TransientError

__all__ = [
    "InvalidAccountError",
    "InvalidPlannerConfigError",
    "InvalidTargetsError",
    "LedgerUnavailableError",
    "MissingPriceError",
    "PlanInputError",
    "PortfolioError",
]


class PortfolioError(AlchemiserError):
    """Root of the portfolio service's errors."""


class InvalidTargetsError(PortfolioError):
    """Target weights are malformed: negative, not finite, or not summing to about 1."""


class MissingPriceError(PortfolioError):
    """A held position or a bought target symbol has no usable price."""


class InvalidAccountError(PortfolioError):
    """An account snapshot is malformed: negative quantity, bad price or negative value."""


class InvalidPlannerConfigError(PortfolioError, ConfigurationError):
    """A planner setting is out of range (reserve, minimum trade, weight-sum bounds)."""


class PlanInputError(PortfolioError):
    """A CLI input file cannot be read or does not have the expected shape."""


class LedgerUnavailableError(PortfolioError, TransientError):
    """The workflow ledger's database cannot be reached; the input is retried."""
