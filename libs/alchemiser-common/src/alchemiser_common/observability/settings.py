"""Settings of the observability layer: logging, the metrics/health server and tracing.

The lead nests :class:`ObservabilitySettings` into ``CommonSettings`` as the field
``observability``, so the environment variables read
``ALCHEMISER_OBSERVABILITY__LOG_LEVEL``, ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` and so on.

Each service has its own default metrics port, so the three run side by side on one machine
without setting anything (strategy 9101, portfolio 9102, execution 9103; the paper exchange and
the registry serve HTTP on their own ports). A service declares it with a subclass whose
``metrics_port`` field is :func:`metrics_port_field` of its port: a subclass, not a default
instance, because an ``ALCHEMISER_OBSERVABILITY__*`` variable replaces the whole section and
would bring back the class default.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_METRICS_PORT",
    "LogFormat",
    "ObservabilitySettings",
    "OtelExporter",
    "metrics_port_field",
]

DEFAULT_METRICS_PORT = 9000
"""The metrics port of a process that declares none of its own."""

LogFormat = Literal["json", "console"]
OtelExporter = Literal["otlp", "console", "none"]

_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ObservabilitySettings(BaseModel):
    """How a process logs, where it serves /metrics, /healthz and /readyz, and how it traces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_level: str = Field(default="INFO", description="One of DEBUG, INFO, WARNING, ERROR.")
    log_format: LogFormat = Field(
        default="json", description="json: one JSON object a line; console: for humans."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description=(
            "Interface of the /metrics, /healthz, /readyz server. Loopback by default for "
            "development; the Helm chart sets 0.0.0.0 so the kubelet and Prometheus reach it."
        ),
    )
    metrics_port: int = Field(
        default=DEFAULT_METRICS_PORT, ge=0, le=65535, description="0 picks a free port."
    )
    readiness_check_timeout_s: float = Field(
        default=2.0, gt=0, le=30, description="Time box for each readiness check."
    )
    otel_exporter: OtelExporter = Field(
        default="none",
        description="otlp (HTTP), console, or none (spans still made so context propagates).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces; when unset the "
            "exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT."
        ),
    )
    otel_service_name: str | None = Field(
        default=None, description="service.name of the spans; defaults to the service name."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> object:
        if isinstance(value, str):
            upper = value.strip().upper()
            if upper not in _LEVELS:
                raise ValueError(f"must be one of {', '.join(_LEVELS)}")
            return upper
        return value

    def level_number(self) -> int:
        """The stdlib logging level number of :attr:`log_level`."""
        return logging.getLevelNamesMapping()[self.log_level]


def metrics_port_field(default: int) -> Any:
    """The ``metrics_port`` field with a service's own default port (see the module docstring).

    ``class StrategyObservability(ObservabilitySettings): metrics_port: int =
    metrics_port_field(9101)``.
    """
    return Field(
        default=default,
        ge=0,
        le=65535,
        description=f"0 picks a free port; {default} by default for this service.",
    )
