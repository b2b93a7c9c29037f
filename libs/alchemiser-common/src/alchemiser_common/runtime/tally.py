"""A batch's metric updates, counted while the batch is processed and applied after its commit.

The loop counts what each input did (handled, duplicate, dead-lettered, ...) into the batch's
:class:`MetricsTally`; only once the Kafka transaction committed does :meth:`MetricsTally.apply`
add them to the process's :class:`~alchemiser_common.observability.metrics.Metrics`, one
increment per label set rather than one per input (an aborted batch counts nothing). Handler
latencies are observed one by one, each into its label set's histogram.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from alchemiser_common.observability.metrics import Metrics

__all__ = ["MetricsTally"]


@dataclass(slots=True)
class MetricsTally:
    """Counts of one batch, by label values (see the module docstring)."""

    consumed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """``event_consumed_total`` by (topic, event_type, outcome)."""
    published: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``event_published_total`` by (topic, event_type)."""
    latencies_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """``event_handler_latency_ms`` observations by (topic, event_type)."""
    workflows_finished: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """``workflows_finished_total`` by (outcome, failure_step, reason)."""
    dedupe_hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``dedupe_hits_total`` by (consumer, event_type)."""
    dedupe_conflicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``dedupe_conflicts_total`` by (consumer, event_type)."""
    dlq_messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``dlq_messages_total`` by (topic, reason)."""

    def handled(self, topic: str, event_type: str, elapsed_ms: float) -> None:
        """One input handled in ``elapsed_ms``."""
        self.consumed[(topic, event_type, "handled")] += 1
        self.latencies_ms.setdefault((topic, event_type), []).append(elapsed_ms)

    def apply(self, metrics: Metrics) -> None:
        """Add the batch's counts to ``metrics`` (call once, after the commit)."""
        for (topic, event_type), latencies in self.latencies_ms.items():
            histogram = metrics.event_handler_latency_ms.labels(topic, event_type)
            for elapsed_ms in latencies:
                histogram.observe(elapsed_ms)
        for consumed, count in self.consumed.items():
            metrics.event_consumed.labels(*consumed).inc(count)
        for published, count in self.published.items():
            metrics.event_published.labels(*published).inc(count)
        for finished, count in self.workflows_finished.items():
            metrics.workflows_finished.labels(*finished).inc(count)
        for hit, count in self.dedupe_hits.items():
            metrics.dedupe_hits.labels(*hit).inc(count)
        for conflict, count in self.dedupe_conflicts.items():
            metrics.dedupe_conflicts.labels(*conflict).inc(count)
        for dead, count in self.dlq_messages.items():
            metrics.dlq_messages.labels(*dead).inc(count)
