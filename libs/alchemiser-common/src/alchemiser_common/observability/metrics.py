"""The Prometheus metrics every Alchemiser process exposes on ``/metrics``.

Each process builds one :class:`Metrics` on its own ``CollectorRegistry`` (not the library's
global default), so tests create fresh ones and nothing registered by a dependency leaks into
the scrape. ``prometheus_client`` appends ``_total`` to counter names, so counters are declared
without it: ``Counter("event_published", ...)`` is scraped as ``event_published_total``.
Counters and histograms also expose ``<name>_created`` series unless the environment sets
``PROMETHEUS_DISABLE_CREATED_SERIES=True`` (a process-wide switch of the client library).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = [
    "HANDLER_LATENCY_BUCKETS_MS",
    "METRIC_NAMES",
    "WORKFLOW_DURATION_BUCKETS_MS",
    "Metrics",
]

# Handlers do a database transaction and a produce: milliseconds to a few seconds.
HANDLER_LATENCY_BUCKETS_MS = (
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0,
)  # fmt: skip
# A workflow crosses three processes and the broker: tens of milliseconds to minutes.
WORKFLOW_DURATION_BUCKETS_MS = (
    10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
    120000.0, 300000.0,
)  # fmt: skip

# The sample names a scrape shows (besides _created, _bucket, _sum and _count series).
METRIC_NAMES = (
    "event_consumed_total",
    "event_published_total",
    "event_handler_latency_ms",
    "workflow_duration_ms",
    "workflows_finished_total",
    "orders_submitted_total",
    "orders_filled_total",
    "orders_rejected_total",
    "traded_value_usd_total",
    "dedupe_hits_total",
    "dedupe_conflicts_total",
    "dlq_messages_total",
    "consumer_lag",
    "transactions_total",
    "inbox_retry_total",
)


class Metrics:
    """All metric families of a process, registered on one ``CollectorRegistry``.

    Label sets:

    * ``event_consumed_total{topic, event_type, outcome}`` (outcome e.g. handled, duplicate,
      dead_lettered, failed)
    * ``event_published_total{topic, event_type}``
    * ``event_handler_latency_ms{topic, event_type}`` (histogram)
    * ``workflow_duration_ms`` (histogram, no labels)
    * ``workflows_finished_total{outcome, failure_step, reason}``: the workflows this process
      ended (``completed`` with empty step and reason, or ``failed`` with the event's
      ``failure_step`` and ``reason``; the circuit breaker's trips are the failures with reason
      ``max_order_value_exceeded`` or ``daily_traded_value_exceeded``)
    * ``orders_submitted_total``, ``orders_filled_total``, ``orders_rejected_total``
      ``{side, broker}``
    * ``traded_value_usd_total{side, broker}``: the notional of fills (quantity times average
      price, in USD, counted as fills are learnt; a float, for dashboards only)
    * ``dedupe_hits_total{consumer, event_type}``, ``dedupe_conflicts_total{consumer,
      event_type}``
    * ``dlq_messages_total{topic, reason}``
    * ``consumer_lag{topic, partition}`` (gauge)
    * ``transactions_total{outcome}`` (committed or aborted)
    * ``inbox_retry_total`` (no labels)
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_metrics: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Register the families on ``registry`` (a fresh one when omitted).

        With ``process_metrics`` the standard ``process_*``, ``python_gc_*`` and
        ``python_info`` collectors are registered too (a service does this once at start-up).
        ``clock`` (seconds, monotonic) times :meth:`time_handler`; tests pass a fake one.
        """
        self._clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.event_consumed = Counter(
            "event_consumed",
            "Records taken from a topic, by outcome.",
            ("topic", "event_type", "outcome"),
            registry=reg,
        )
        self.event_published = Counter(
            "event_published",
            "Events produced to a topic (counted when the transaction commits).",
            ("topic", "event_type"),
            registry=reg,
        )
        self.event_handler_latency_ms = Histogram(
            "event_handler_latency_ms",
            "Milliseconds from taking a record to committing its outputs.",
            ("topic", "event_type"),
            buckets=HANDLER_LATENCY_BUCKETS_MS,
            registry=reg,
        )
        self.workflow_duration_ms = Histogram(
            "workflow_duration_ms",
            "Milliseconds from a workflow's first event to its last.",
            buckets=WORKFLOW_DURATION_BUCKETS_MS,
            registry=reg,
        )
        self.workflows_finished = Counter(
            "workflows_finished",
            "Workflows this process ended, by outcome (and failure step and reason).",
            ("outcome", "failure_step", "reason"),
            registry=reg,
        )
        # Present from the start: increase() over it sees the first completion.
        self.workflows_finished.labels(outcome="completed", failure_step="", reason="")
        order_labels = ("side", "broker")
        self.orders_submitted = Counter(
            "orders_submitted", "Orders sent to the broker.", order_labels, registry=reg
        )
        self.orders_filled = Counter(
            "orders_filled", "Orders the broker reported filled.", order_labels, registry=reg
        )
        self.orders_rejected = Counter(
            "orders_rejected",
            "Orders rejected by the broker or by risk checks.",
            order_labels,
            registry=reg,
        )
        self.traded_value_usd = Counter(
            "traded_value_usd",
            "Notional of the fills the broker reported (USD).",
            order_labels,
            registry=reg,
        )
        self.dedupe_hits = Counter(
            "dedupe_hits",
            "Records skipped because the inbox already held the same event.",
            ("consumer", "event_type"),
            registry=reg,
        )
        self.dedupe_conflicts = Counter(
            "dedupe_conflicts",
            "Records whose event id was already stored with a different payload.",
            ("consumer", "event_type"),
            registry=reg,
        )
        self.dlq_messages = Counter(
            "dlq_messages",
            "Records sent to the dead-letter topic, by reason.",
            ("topic", "reason"),
            registry=reg,
        )
        self.consumer_lag = Gauge(
            "consumer_lag",
            "High watermark minus the consumer's position, per assigned partition.",
            ("topic", "partition"),
            registry=reg,
        )
        self.transactions = Counter(
            "transactions",
            "Kafka transactions finished, by outcome (committed or aborted).",
            ("outcome",),
            registry=reg,
        )
        self.inbox_retry = Counter(
            "inbox_retry",
            "Inbox writes retried after a transient database error.",
            registry=reg,
        )
        if process_metrics:
            self._register_process_collectors()

    def _register_process_collectors(self) -> None:
        # Fresh instances: the library's module-level ones are bound to its global registry.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    @contextmanager
    def time_handler(self, topic: str, event_type: str) -> Iterator[None]:
        """Observe the ``with`` block's duration into ``event_handler_latency_ms``."""
        started = self._clock()
        try:
            yield
        finally:
            elapsed_ms = (self._clock() - started) * 1000.0
            self.event_handler_latency_ms.labels(topic=topic, event_type=event_type).observe(
                elapsed_ms
            )

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Record the lag of one assigned partition (negative values are stored as 0)."""
        self.consumer_lag.labels(topic=topic, partition=str(partition)).set(max(lag, 0))

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this process no longer owns (after a revoke)."""
        with suppress(KeyError):
            self.consumer_lag.remove(topic, str(partition))

    def render(self) -> bytes:
        """The registry in Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)
