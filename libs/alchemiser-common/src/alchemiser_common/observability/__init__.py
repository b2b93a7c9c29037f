"""Observability of every Alchemiser process: JSON logs, Prometheus metrics, health, tracing.

Start-up, in a service's ``__main__`` only::

    obs = settings.observability
    configure_logging(obs.log_level, obs.log_format, settings.service_name)
    configure_tracing(obs.otel_service_name or settings.service_name, obs.otel_exporter,
                      obs.otel_endpoint, instance_id=settings.instance_id)
    metrics = Metrics(process_metrics=True)
    server = ObservabilityServer.from_settings(obs, metrics.registry)
    server.add_readiness_check("partitions-assigned", assigned.is_set)
    server.start()
"""

from __future__ import annotations

from alchemiser_common.observability.exceptions import (
    ObservabilityConfigurationError,
    ObservabilityServerError,
)
from alchemiser_common.observability.http import ObservabilityServer
from alchemiser_common.observability.logging import (
    EVENT_CONTEXT_KEYS,
    bind_event_context,
    configure_logging,
    get_logger,
)
from alchemiser_common.observability.masking import MASK, mask_secrets, mask_secrets_processor
from alchemiser_common.observability.metrics import METRIC_NAMES, Metrics
from alchemiser_common.observability.readiness import (
    CheckResult,
    ReadinessChecks,
    ReadinessReport,
)
from alchemiser_common.observability.settings import ObservabilitySettings
from alchemiser_common.observability.tracing import (
    KafkaHeaders,
    configure_tracing,
    consume_span,
    extract_context,
    inject_headers,
    produce_span,
)

__all__ = [
    "EVENT_CONTEXT_KEYS",
    "MASK",
    "METRIC_NAMES",
    "CheckResult",
    "KafkaHeaders",
    "Metrics",
    "ObservabilityConfigurationError",
    "ObservabilityServer",
    "ObservabilityServerError",
    "ObservabilitySettings",
    "ReadinessChecks",
    "ReadinessReport",
    "bind_event_context",
    "configure_logging",
    "configure_tracing",
    "consume_span",
    "extract_context",
    "get_logger",
    "inject_headers",
    "mask_secrets",
    "mask_secrets_processor",
    "produce_span",
]
