from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from alchemiser_common.observability import Metrics, ObservabilityServer

# Written out here, not imported, so a renamed metric fails this test.
EXPECTED_NAMES = {
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
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _exercise(metrics: Metrics) -> None:
    metrics.event_consumed.labels(topic="t", event_type="E", outcome="handled").inc()
    metrics.event_published.labels(topic="t", event_type="E").inc()
    metrics.event_handler_latency_ms.labels(topic="t", event_type="E").observe(3.0)
    metrics.workflow_duration_ms.observe(1200.0)
    metrics.orders_submitted.labels(side="buy", broker="alpaca").inc()
    metrics.orders_filled.labels(side="buy", broker="alpaca").inc()
    metrics.orders_rejected.labels(side="sell", broker="simulated").inc()
    metrics.workflows_finished.labels(outcome="completed", failure_step="", reason="").inc()
    metrics.traded_value_usd.labels(side="buy", broker="exchange").inc(1234.5)
    metrics.dedupe_hits.labels(consumer="portfolio", event_type="E").inc()
    metrics.dedupe_conflicts.labels(consumer="portfolio", event_type="E").inc()
    metrics.dlq_messages.labels(topic="t", reason="bad_magic_byte").inc()
    metrics.set_consumer_lag("t", 0, 5)
    metrics.transactions.labels(outcome="committed").inc()
    metrics.inbox_retry.inc()


def _sample_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = sample.name
            if family.type == "histogram":
                for suffix in HISTOGRAM_SUFFIXES:
                    name = name.removesuffix(suffix)
            names.add(name)
    return names


def test_scrape_when_every_metric_used_then_exposed_names_exactly_as_listed() -> None:
    metrics = Metrics()
    _exercise(metrics)

    with ObservabilityServer(metrics.registry, port=0) as server:
        response = httpx.get(f"{server.url}/metrics", timeout=5)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert _sample_names(response.text) == EXPECTED_NAMES
    assert "# TYPE event_published_total counter" in response.text


def test_metrics_when_two_instances_then_registries_are_independent() -> None:
    first, second = Metrics(), Metrics()

    first.inbox_retry.inc()
    first.inbox_retry.inc()

    assert first.registry.get_sample_value("inbox_retry_total") == 2.0
    assert second.registry.get_sample_value("inbox_retry_total") == 0.0


def test_time_handler_when_block_runs_then_latency_observed_in_ms() -> None:
    ticks = iter([100.0, 100.25])
    metrics = Metrics(clock=lambda: next(ticks))

    with metrics.time_handler("strategy.signals", "SignalGenerated"):
        pass

    labels = {"topic": "strategy.signals", "event_type": "SignalGenerated"}
    registry = metrics.registry
    assert registry.get_sample_value("event_handler_latency_ms_sum", labels) == 250.0
    assert (
        registry.get_sample_value("event_handler_latency_ms_bucket", labels | {"le": "250.0"}) == 1
    )
    assert (
        registry.get_sample_value("event_handler_latency_ms_bucket", labels | {"le": "100.0"}) == 0
    )


def test_consumer_lag_when_partition_forgotten_then_series_removed() -> None:
    metrics = Metrics()
    metrics.set_consumer_lag("t", 1, 7)
    metrics.set_consumer_lag("t", 2, -3)

    metrics.forget_partition("t", 1)
    metrics.forget_partition("t", 9)

    assert (
        metrics.registry.get_sample_value("consumer_lag", {"topic": "t", "partition": "1"}) is None
    )
    assert metrics.registry.get_sample_value("consumer_lag", {"topic": "t", "partition": "2"}) == 0


def test_metrics_when_process_metrics_enabled_then_process_families_exposed() -> None:
    plain, full = Metrics(), Metrics(process_metrics=True)

    plain_names = {f.name for f in text_string_to_metric_families(plain.render().decode())}
    full_names = {f.name for f in text_string_to_metric_families(full.render().decode())}

    assert "python_info" in full_names
    assert "process_cpu_seconds" in full_names
    assert not any(name.startswith(("process_", "python_")) for name in plain_names)
