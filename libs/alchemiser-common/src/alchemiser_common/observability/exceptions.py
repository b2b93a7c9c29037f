"""Errors raised by the observability layer."""

from __future__ import annotations

from alchemiser_common.errors import AlchemiserError, ConfigurationError

__all__ = ["ObservabilityConfigurationError", "ObservabilityServerError"]


class ObservabilityConfigurationError(ConfigurationError):
    """A logging, metrics or tracing option is invalid; the process must not start."""


class ObservabilityServerError(AlchemiserError):
    """The /metrics, /healthz and /readyz server could not bind or start."""
