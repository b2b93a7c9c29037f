"""Settings of the observability layer: logging, the metrics/health server and tracing.

The lead nests :class:`ObservabilitySettings` into ``CommonSettings`` as the field
``observability``, so the environment variables read
``ALCHEMISER_OBSERVABILITY__LOG_LEVEL``, ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` and so on.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LogFormat", "ObservabilitySettings", "OtelExporter"]

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
    metrics_port: int = Field(default=9000, ge=0, le=65535, description="0 picks a free port.")
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
