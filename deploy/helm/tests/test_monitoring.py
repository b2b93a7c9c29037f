"""The dashboards and alert rules against a real Prometheus scraping the real services.

Debian's Prometheus runs as a plain process on loopback (``.ci/run`` installs it; without it
these tests are skipped outside CI and fail in CI). It scrapes the three services, started as
processes against a private embedded broker, the registry and the paper exchange, with the labels
the chart's ServiceMonitor gives their samples in Kubernetes, and loads the chart's rendered
PrometheusRule as its rule file. Three workflows run:

1. execution started with a one-dollar order cap: the workflow fails, the circuit breaker
   (``max_order_value_exceeded``);
2. execution restarted with its default caps: the next session's workflow completes, with
   orders and fills; its trigger redelivered (a dedupe hit) and a garbage record on the
   trigger topic (a dead letter);
3. a third session completes.

Then every dashboard panel's queries (with Grafana's variables filled in) are evaluated
through the HTTP API: each must parse and each panel must return data; every alert rule must
evaluate without error, the ones this run provokes must fire, and ``promtool check rules``
passes on the rendered rules. The PNG previews in ``docs/dashboards/`` are drawn from this
run's data (``ALCHEMISER_DASHBOARD_PREVIEWS=docs/dashboards``; otherwise into a temp dir).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from alchemiser_broker.settings import LOCAL_EXCHANGE_KEY_ID
from alchemiser_common.events import WorkflowCompleted, WorkflowFailed
from alchemiser_common.settings import KafkaSettings
from alchemiser_common.topics import create_topics
from alchemiser_common.workflow import build_trigger, publish, wait_for_outcome
from alchemiser_devtools.dashboards import (
    DASHBOARDS_DIR,
    check_dashboards,
    panel_queries,
    render_preview,
    substitute,
)
from alchemiser_devtools.embedded import EmbeddedBroker
from alchemiser_devtools.exchange import ExchangeProcess
from alchemiser_devtools.harness import Pipeline
from alchemiser_devtools.local import free_port
from alchemiser_devtools.prometheus import (
    PrometheusServer,
    ScrapeTarget,
    find_prometheus,
    promtool_check_rules,
)
from alchemiser_exchange import account_number_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "alchemiser"
DATASET = REPO / "services" / "strategy" / "data" / "demo"
RELEASE, NAMESPACE = "alc", "trading"
SERVICES = ("strategy", "portfolio", "execution")
ACCOUNT = account_number_for(LOCAL_EXCHANGE_KEY_ID)
SESSIONS = (date(2018, 6, 4), date(2018, 6, 5), date(2018, 6, 6))
WORKFLOW_TIMEOUT_S = 120.0
SCRAPE_WAIT_S = 30.0
# Fired by this run (the others need Kubernetes, a silent weekday or sustained load).
PROVOKED_ALERTS = {
    "AlchemiserWorkflowFailed",
    "AlchemiserCircuitBreakerTripped",
    "AlchemiserDeadLettersGrowing",
}

if find_prometheus() is None:
    if os.environ.get("CI"):
        pytest.fail("prometheus/promtool missing: .ci/run installs Debian's prometheus package")
    pytest.skip("prometheus is not installed (apt-get install prometheus)", allow_module_level=True)

pytestmark = pytest.mark.integration


def _rendered_rules() -> dict[str, Any]:
    """The ``groups`` of the chart's PrometheusRule, rendered with the prod values."""
    values = yaml.safe_load((CHART / "values-prod.yaml").read_text())
    files = helm.Chart.load(str(CHART)).render(
        copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    for text in files.values():
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] == "PrometheusRule":
                return {"groups": doc["spec"]["groups"]}
    raise AssertionError("the prod values render no PrometheusRule")


@dataclass
class Scraped:
    """The run: the Prometheus that scraped it, its window and what the workflows did."""

    prometheus: PrometheusServer
    started: float
    ended: float
    outcomes: list[WorkflowCompleted | WorkflowFailed]
    rules_path: Path

    @property
    def range_s(self) -> int:
        return int(self.ended - self.started) + 1


def _run_workflow(
    pipeline: Pipeline, session: date, kafka: KafkaSettings
) -> WorkflowCompleted | WorkflowFailed:
    trigger = build_trigger(ACCOUNT, requested_by="monitoring-test", as_of=session)
    publish(trigger, kafka, pipeline.serde)
    outcome = wait_for_outcome(trigger.correlation_id, kafka, pipeline.serde, WORKFLOW_TIMEOUT_S)
    assert outcome.event is not None, f"workflow for {session} did not end"
    return outcome.event


def _wait_for(prometheus: PrometheusServer, expr: str) -> None:
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while time.monotonic() < deadline:
        if prometheus.query(expr):
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never saw {expr}")


@pytest.fixture(scope="module")
def scraped(
    registered_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scraped]:
    workdir = tmp_path_factory.mktemp("monitoring")
    # A private broker: the session's one holds other tests' triggers, which these services
    # would consume (and fail, as another account's) into the counters asserted on below.
    with EmbeddedBroker(log_dir=workdir) as broker:
        yield from _scrape_run(broker.bootstrap_servers, registered_registry, workdir)


def _scrape_run(
    kafka_bootstrap_servers: str, registered_registry: str, workdir: Path
) -> Iterator[Scraped]:
    create_topics(
        {"bootstrap.servers": kafka_bootstrap_servers}, partitions=1, replication_factor=1
    )
    exchange = ExchangeProcess(DATASET, f"sqlite:///{workdir / 'exchange.db'}", workdir)
    exchange.start()
    pipeline = Pipeline(
        kafka_bootstrap_servers, registered_registry, f"sqlite:///{workdir / 'x.db'}", workdir
    )
    ports = {service: free_port() for service in SERVICES}

    def start(service: str, **env: str) -> Any:
        extra = {
            "ALCHEMISER_DATABASE__URL": f"sqlite:///{workdir / service}.db",
            "ALCHEMISER_OBSERVABILITY__METRICS_PORT": str(ports[service]),
            **env,
        }
        if service == "strategy":
            extra["ALCHEMISER_STRATEGY__DATASET_DIR"] = str(DATASET)
        else:
            extra["ALCHEMISER_BROKER__EXCHANGE_URL"] = exchange.url
        return pipeline.start_module(f"alchemiser_{service}", service, **extra)

    rules_path = workdir / "rules.yml"
    rules_path.write_text(json.dumps(_rendered_rules(), indent=2))
    targets = [
        ScrapeTarget(
            f"127.0.0.1:{ports[service]}",
            {
                "namespace": NAMESPACE,
                "service": f"{RELEASE}-alchemiser-{service}-metrics",
                "pod": f"{RELEASE}-alchemiser-{service}-0",
            },
        )
        for service in SERVICES
    ]
    prometheus = PrometheusServer(workdir / "prometheus", targets, rule_files=[rules_path])
    try:
        start("strategy")
        start("portfolio")
        capped = start("execution", ALCHEMISER_EXECUTION__MAX_ORDER_VALUE="1")
        for service in SERVICES:
            pipeline.processes[SERVICES.index(service)].metrics_url()  # 'running' logged
        prometheus.start()
        started = time.time()
        _wait_for(prometheus, "count(up == 1) == 3")
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap_servers, fetch_wait_max_ms=10)
        outcomes = [_run_workflow(pipeline, SESSIONS[0], kafka)]
        _wait_for(prometheus, 'workflows_finished_total{reason="max_order_value_exceeded"} == 1')
        time.sleep(3)  # a few scrapes of the capped process after its trip

        assert capped.terminate() == 0
        start("execution").metrics_url()
        _wait_for(prometheus, 'count(up{service=~".*execution.*"} == 1) == 1')
        # The trigger of the second workflow delivered twice; a garbage record beside it.
        trigger = build_trigger(ACCOUNT, requested_by="monitoring-test", as_of=SESSIONS[1])
        pipeline.produce([trigger, trigger])
        pipeline.produce_raw(trigger.TOPIC, [b"not an avro record"], key=ACCOUNT.encode())
        second = wait_for_outcome(
            trigger.correlation_id, kafka, pipeline.serde, WORKFLOW_TIMEOUT_S
        ).event
        assert second is not None
        outcomes.append(second)
        time.sleep(3)  # spread the workflows over a few scrapes
        outcomes.append(_run_workflow(pipeline, SESSIONS[2], kafka))
        _wait_for(prometheus, 'workflows_finished_total{outcome="completed"} == 2')
        _wait_for(prometheus, "dedupe_hits_total > 0")
        _wait_for(prometheus, "dlq_messages_total > 0")
        time.sleep(3)
        yield Scraped(prometheus, started, time.time(), outcomes, rules_path)
    finally:
        prometheus.stop()
        pipeline.stop_all()
        exchange.stop()


def test_run_when_capped_then_restarted_then_one_trip_and_two_completions(
    scraped: Scraped,
) -> None:
    first, second, third = scraped.outcomes
    assert isinstance(first, WorkflowFailed)
    assert first.reason == "max_order_value_exceeded"
    assert isinstance(second, WorkflowCompleted)
    assert second.summary.orders_placed > 0
    assert isinstance(third, WorkflowCompleted)

    query = scraped.prometheus.query
    # The restarted execution counts from zero again: the capped one's trip is in the past.
    trips = query('max_over_time(workflows_finished_total{outcome="failed"}[10m]) > 0')
    assert [(s[0]["failure_step"], s[0]["reason"], s[1][0][1]) for s in trips] == [
        ("execution", "max_order_value_exceeded", 1.0)
    ]
    assert query('sum(workflows_finished_total{outcome="completed"})')[0][1][0][1] == 2.0
    assert query("sum(traded_value_usd_total)")[0][1][0][1] > 0


def test_dashboards_in_the_chart_are_what_the_builder_makes() -> None:
    assert check_dashboards() == []


def test_every_panel_query_parses_and_every_panel_returns_data(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    empty_panels = []
    checked = 0
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        model = json.loads(path.read_text())
        by_panel: dict[str, int] = {}
        for query in panel_queries(model):
            expr = substitute(query.expr, range_s=scraped.range_s)
            if query.panel_type == "stat":
                result = prometheus.query(expr, at=scraped.ended)
            else:
                result = prometheus.query_range(expr, scraped.started, scraped.ended, step=1)
            points = sum(len(values) for _, values in result)
            by_panel[query.panel] = by_panel.get(query.panel, 0) + points
            checked += 1
        assert len(by_panel) == len(model["panels"]), path.name
        empty_panels += [f"{model['title']}: {panel}" for panel, n in by_panel.items() if n == 0]
    assert checked >= 25
    assert empty_panels == []


def test_every_alert_evaluates_and_the_provoked_ones_fire(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while True:
        rules = prometheus.rules()
        firing = {r["name"] for r in rules if r["state"] == "firing"}
        if firing >= PROVOKED_ALERTS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = {r["name"] for r in rules}
    assert names == {
        "AlchemiserWorkflowFailed",
        "AlchemiserNoWorkflowCompleted",
        "AlchemiserCircuitBreakerTripped",
        "AlchemiserDeadLettersGrowing",
        "AlchemiserConsumerLagHigh",
        "AlchemiserHandlerLatencyHigh",
        "AlchemiserServiceNotReady",
        "AlchemiserMetricsDown",
    }
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    assert firing >= PROVOKED_ALERTS, [
        (r["name"], r["state"], r["query"], prometheus.query(r["query"]))
        for r in rules
        if r["name"] in PROVOKED_ALERTS
    ]
    assert "AlchemiserMetricsDown" not in firing
    assert "AlchemiserNoWorkflowCompleted" not in firing
    for rule in rules:  # and each expression on its own, through the query API
        prometheus.query(rule["query"])


def test_promtool_accepts_the_rendered_rules_and_rejects_a_broken_one(
    scraped: Scraped, tmp_path: Path
) -> None:
    checked = promtool_check_rules(scraped.rules_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "8 rules found" in checked.stdout

    broken = _rendered_rules()
    broken["groups"][0]["rules"][0]["expr"] = "sum(increase(workflows_finished_total[15m]) > 0"
    bad_path = tmp_path / "broken.yml"
    bad_path.write_text(json.dumps(broken))
    assert promtool_check_rules(bad_path).returncode != 0


def test_previews_render_every_dashboard_from_the_run(scraped: Scraped, tmp_path: Path) -> None:
    target = os.environ.get("ALCHEMISER_DASHBOARD_PREVIEWS")
    out = (REPO / target) if target else tmp_path
    prometheus = scraped.prometheus
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        model = json.loads(path.read_text())
        png = render_preview(
            model,
            lambda expr: prometheus.query_range(expr, scraped.started, scraped.ended, step=1),
            lambda expr: prometheus.query(expr, at=scraped.ended),
            out / f"{path.stem}.png",
            range_s=scraped.range_s,
            subtitle="three workflows on the paper exchange, scraped every second",
        )
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 20_000
