"""The Grafana dashboards, built with grafana-foundation-sdk, and their previews.

Three dashboards over the metrics every service exposes
(:mod:`alchemiser_common.observability.metrics`):

* **Workflows**: outcomes, duration, failures by step and reason;
* **Event flow**: published and consumed per topic, handler latency p50/p99, dead letters,
  dedupe hits, consumer lag, transactions;
* **Trading**: orders submitted, filled and rejected, traded value, circuit breaker trips.

:func:`write_dashboards` writes them as JSON into the Helm chart (``dashboards/``), which
ships each as a ConfigMap with the Grafana sidecar's label; :func:`check_dashboards` tells
whether the checked-in files are what this module builds (a test and ``alchemiser dev
dashboards --check`` run it). Queries use the variables ``$datasource`` and ``$namespace``
(multi-valued, "All" is ``.*``) and Grafana's ``$__rate_interval`` and ``$__range``;
:func:`panel_queries` lists every panel's queries and :func:`substitute` fills the variables
in for evaluating them against a Prometheus outside Grafana. :func:`render_preview` draws a
dashboard's panels from a Prometheus's data into a PNG (matplotlib), for readers without
Grafana.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from alchemiser_devtools.prometheus import Series

__all__ = [
    "DASHBOARDS",
    "DASHBOARDS_DIR",
    "PanelQuery",
    "build_dashboards",
    "check_dashboards",
    "panel_queries",
    "render_preview",
    "substitute",
    "write_dashboards",
]


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[4]


DASHBOARDS_DIR = _repo_root() / "deploy" / "helm" / "alchemiser" / "dashboards"
"""Where the chart reads the dashboards from (one ConfigMap per file)."""

_DATASOURCE = dashboard_model.DataSourceRef(type_val="prometheus", uid="${datasource}")
_SEL = 'namespace=~"$namespace"'
_TRIPS = 'reason=~"max_order_value_exceeded|daily_traded_value_exceeded"'
_WIDTH = 24  # Grafana's grid columns


@dataclass(frozen=True)
class Query:
    """One PromQL target and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """One panel: ``timeseries`` (over time) or ``stat`` (one number over the range)."""

    title: str
    kind: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12


@dataclass(frozen=True)
class DashboardSpec:
    """One dashboard: its file name, uid, title and panels (laid out left to right)."""

    name: str
    uid: str
    title: str
    description: str
    panels: tuple[PanelSpec, ...]


def _q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def _quantile(q: str, metric: str, by: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) "
        f"(rate({metric}_bucket{{{_SEL}}}[$__rate_interval])))"
    )


WORKFLOWS = DashboardSpec(
    name="workflows",
    uid="alchemiser-workflows",
    title="Alchemiser / Workflows",
    description="Daily workflows: how they ended, how long they took, where and why they failed.",
    panels=(
        PanelSpec(
            "Completed",
            "stat",
            (
                _q(
                    f'sum(increase(workflows_finished_total{{{_SEL},outcome="completed"}}[$__range]))'
                ),
            ),
            description="Workflows that completed in the time range.",
            width=6,
        ),
        PanelSpec(
            "Failed",
            "stat",
            (_q(f'sum(increase(workflows_finished_total{{{_SEL},outcome="failed"}}[$__range]))'),),
            description="Workflows that failed in the time range (any step).",
            width=6,
        ),
        PanelSpec(
            "Duration p50 / p99 (range)",
            "stat",
            (
                _q(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(increase(workflow_duration_ms_bucket{{{_SEL}}}[$__range])))",
                    "p50",
                ),
                _q(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(increase(workflow_duration_ms_bucket{{{_SEL}}}[$__range])))",
                    "p99",
                ),
            ),
            unit="ms",
            description="Trigger to outcome, as execution measures it, over the time range.",
        ),
        PanelSpec(
            "Outcomes",
            "timeseries",
            (
                _q(
                    "sum by (outcome) "
                    f"(increase(workflows_finished_total{{{_SEL}}}[$__rate_interval]))",
                    "{{outcome}}",
                ),
            ),
            description="Workflows ended per interval, by outcome.",
        ),
        PanelSpec(
            "Duration p50 / p99",
            "timeseries",
            (
                _q(_quantile("0.5", "workflow_duration_ms", ""), "p50"),
                _q(_quantile("0.99", "workflow_duration_ms", ""), "p99"),
            ),
            unit="ms",
        ),
        PanelSpec(
            "Failures by step and reason",
            "timeseries",
            (
                _q(
                    "sum by (failure_step, reason) (increase(workflows_finished_total"
                    f'{{{_SEL},outcome="failed"}}[$__rate_interval]))',
                    "{{failure_step}}: {{reason}}",
                ),
            ),
            description="Failed workflows per interval; `alchemiser workflow show` gives details.",
        ),
        PanelSpec(
            "Failures by step (range)",
            "stat",
            (
                _q(
                    "sum by (failure_step) (increase(workflows_finished_total"
                    f'{{{_SEL},outcome="failed"}}[$__range]))',
                    "{{failure_step}}",
                ),
            ),
        ),
    ),
)

EVENT_FLOW = DashboardSpec(
    name="event-flow",
    uid="alchemiser-event-flow",
    title="Alchemiser / Event flow",
    description="Kafka events through the services: rates, latency, dead letters, dedupe, lag.",
    panels=(
        PanelSpec(
            "Published per topic",
            "timeseries",
            (
                _q(
                    f"sum by (topic) (rate(event_published_total{{{_SEL}}}[$__rate_interval]))",
                    "{{topic}}",
                ),
            ),
            unit="ops",
            description="Events produced (counted when their transaction commits).",
        ),
        PanelSpec(
            "Consumed per topic and outcome",
            "timeseries",
            (
                _q(
                    "sum by (topic, outcome) "
                    f"(rate(event_consumed_total{{{_SEL}}}[$__rate_interval]))",
                    "{{topic}} {{outcome}}",
                ),
            ),
            unit="ops",
        ),
        PanelSpec(
            "Handler latency p50 / p99",
            "timeseries",
            (
                _q(_quantile("0.5", "event_handler_latency_ms", "topic"), "p50 {{topic}}"),
                _q(_quantile("0.99", "event_handler_latency_ms", "topic"), "p99 {{topic}}"),
            ),
            unit="ms",
            description="From taking a record to committing its outputs.",
        ),
        PanelSpec(
            "Dead letters",
            "timeseries",
            (
                _q(
                    "sum by (topic, reason) "
                    f"(increase(dlq_messages_total{{{_SEL}}}[$__rate_interval]))",
                    "{{topic}}: {{reason}}",
                ),
            ),
            description="Records sent to a .dlq topic; `alchemiser dlq list` shows them.",
        ),
        PanelSpec(
            "Dedupe hits",
            "timeseries",
            (
                _q(
                    "sum by (consumer, event_type) "
                    f"(increase(dedupe_hits_total{{{_SEL}}}[$__rate_interval]))",
                    "{{consumer}} {{event_type}}",
                ),
            ),
            description="Redelivered records the inbox recognised (no second effect).",
        ),
        PanelSpec(
            "Consumer lag",
            "timeseries",
            (_q(f"max by (service, topic) (consumer_lag{{{_SEL}}})", "{{service}} {{topic}}"),),
        ),
        PanelSpec(
            "Transactions",
            "timeseries",
            (
                _q(
                    f"sum by (outcome) (rate(transactions_total{{{_SEL}}}[$__rate_interval]))",
                    "{{outcome}}",
                ),
            ),
            unit="ops",
            width=24,
        ),
    ),
)

TRADING = DashboardSpec(
    name="trading",
    uid="alchemiser-trading",
    title="Alchemiser / Trading",
    description="Orders at the broker, traded value and the circuit breaker.",
    panels=(
        PanelSpec(
            "Traded value (range)",
            "stat",
            (_q(f"sum(increase(traded_value_usd_total{{{_SEL}}}[$__range]))"),),
            unit="currencyUSD",
            width=8,
        ),
        PanelSpec(
            "Orders filled (range)",
            "stat",
            (_q(f"sum(increase(orders_filled_total{{{_SEL}}}[$__range]))"),),
            width=8,
        ),
        PanelSpec(
            "Circuit breaker trips (range)",
            "stat",
            (
                _q(
                    "sum(increase(workflows_finished_total"
                    f'{{{_SEL},outcome="failed",{_TRIPS}}}[$__range]))'
                ),
            ),
            description="Workflows execution refused for a notional cap; nothing was sent.",
            width=8,
        ),
        PanelSpec(
            "Orders submitted / filled / rejected",
            "timeseries",
            (
                _q(
                    f"sum by (side) (increase(orders_submitted_total{{{_SEL}}}[$__rate_interval]))",
                    "submitted {{side}}",
                ),
                _q(
                    f"sum by (side) (increase(orders_filled_total{{{_SEL}}}[$__rate_interval]))",
                    "filled {{side}}",
                ),
                _q(
                    f"sum by (side) (increase(orders_rejected_total{{{_SEL}}}[$__rate_interval]))",
                    "rejected {{side}}",
                ),
            ),
        ),
        PanelSpec(
            "Traded value",
            "timeseries",
            (
                _q(
                    f"sum by (side) (increase(traded_value_usd_total{{{_SEL}}}[$__rate_interval]))",
                    "{{side}}",
                ),
            ),
            unit="currencyUSD",
        ),
        PanelSpec(
            "Circuit breaker",
            "timeseries",
            (
                _q(
                    "sum by (reason) (increase(workflows_finished_total"
                    f'{{{_SEL},outcome="failed",{_TRIPS}}}[$__rate_interval]))',
                    "{{reason}}",
                ),
            ),
            description="Trips per interval: a one-order or a daily notional cap was hit.",
        ),
        PanelSpec(
            "Execution refusals and failures by reason (range)",
            "stat",
            (
                _q(
                    "sum by (reason) (increase(workflows_finished_total"
                    f'{{{_SEL},failure_step="execution"}}[$__range]))',
                    "{{reason}}",
                ),
            ),
        ),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (WORKFLOWS, EVENT_FLOW, TRADING)


# -- building -------------------------------------------------------------------------------
def _target(query: Query, index: int, *, instant: bool) -> prometheus_builder.Dataquery:
    target = (
        prometheus_builder.Dataquery()
        .expr(query.expr)
        .ref_id(chr(ord("A") + index))
        .datasource(_DATASOURCE)
    )
    if query.legend:
        target = target.legend_format(query.legend)
    return target.instant() if instant else target.range()


def _panel(spec: PanelSpec, grid: dashboard_model.GridPos) -> Any:
    height = 5 if spec.kind == "stat" else 8
    grid.h = height
    if spec.kind == "stat":
        panel: Any = (
            stat_builder.Panel()
            .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
            .graph_mode(common_model.BigValueGraphMode.NONE)
        )
    else:
        panel = (
            timeseries_builder.Panel()
            .line_width(1)
            .fill_opacity(10)
            .legend(
                common_builder.VizLegendOptions()
                .show_legend(True)
                .display_mode(common_model.LegendDisplayMode.LIST)
                .placement(common_model.LegendPlacement.BOTTOM)
            )
        )
    panel = panel.title(spec.title).datasource(_DATASOURCE).unit(spec.unit).grid_pos(grid)
    if spec.description:
        panel = panel.description(spec.description)
    for index, query in enumerate(spec.queries):
        panel = panel.with_target(_target(query, index, instant=spec.kind == "stat"))
    return panel


def _layout(panels: Sequence[PanelSpec]) -> list[dashboard_model.GridPos]:
    """Left to right, wrapping at 24 columns; a row is as tall as its tallest panel."""
    grids: list[dashboard_model.GridPos] = []
    x = y = row_height = 0
    for spec in panels:
        height = 5 if spec.kind == "stat" else 8
        if x + spec.width > _WIDTH:
            x, y, row_height = 0, y + row_height, 0
        grids.append(dashboard_model.GridPos(h=height, w=spec.width, x=x, y=y))
        x += spec.width
        row_height = max(row_height, height)
    return grids


def _dashboard(spec: DashboardSpec) -> dict[str, Any]:
    builder = (
        dashboard_builder.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(["alchemiser"])
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(
            dashboard_builder.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
        )
        .with_variable(
            dashboard_builder.QueryVariable("namespace")
            .label("Namespace")
            .datasource(_DATASOURCE)
            .query("label_values(event_consumed_total, namespace)")
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    )
    for spec_panel, grid in zip(spec.panels, _layout(spec.panels), strict=True):
        builder = builder.with_panel(_panel(spec_panel, grid))
    encoded: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return encoded


def build_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model by file name (``workflows.json``...)."""
    return {f"{spec.name}.json": _dashboard(spec) for spec in DASHBOARDS}


def _text(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def write_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write every dashboard into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build_dashboards().items():
        path = directory / name
        path.write_text(_text(model))
        written.append(path)
    return written


def check_dashboards(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """The files in ``directory`` that differ from what this module builds (missing,
    changed or extra); empty when they are current."""
    built = {name: _text(model) for name, model in build_dashboards().items()}
    stale = [
        name
        for name, text in built.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    extra = [path.name for path in directory.glob("*.json") if path.name not in built]
    return sorted(stale + extra)


# -- evaluating -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel of a dashboard JSON model."""

    dashboard: str
    panel: str
    panel_type: str
    expr: str
    legend: str


def panel_queries(model: Mapping[str, Any]) -> list[PanelQuery]:
    """Every panel's Prometheus queries in a dashboard JSON model (rows included)."""
    found = []
    panels = list(model.get("panels", []))
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append(
                    PanelQuery(
                        dashboard=str(model["title"]),
                        panel=str(panel.get("title", "")),
                        panel_type=str(panel.get("type", "")),
                        expr=str(target["expr"]),
                        legend=str(target.get("legendFormat", "")),
                    )
                )
    return found


def substitute(expr: str, *, range_s: int, rate_interval: str = "1m") -> str:
    """``expr`` with Grafana's variables as Grafana would fill them in for "All" namespaces."""
    values = {
        "$__rate_interval": rate_interval,
        "$__interval": rate_interval,
        "$__range": f"{max(range_s, 1)}s",
        "$namespace": ".*",
    }
    pattern = re.compile("|".join(re.escape(name) for name in sorted(values, key=len)[::-1]))
    return pattern.sub(lambda match: values[match.group(0)], expr)


# -- previews -------------------------------------------------------------------------------
def _legend(template: str, labels: Mapping[str, str]) -> str:
    if not template:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def render_preview(
    model: Mapping[str, Any],
    query_range: Callable[[str], Series],
    query_instant: Callable[[str], Series],
    path: Path,
    *,
    range_s: int,
    subtitle: str = "",
) -> Path:
    """Draw every panel of ``model`` from Prometheus data into the PNG ``path``.

    ``query_range`` runs a PromQL range query over the preview's window (time series panels),
    ``query_instant`` an instant query at its end (stat panels); ``range_s`` is the window's
    length (``$__range``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = [p for p in model.get("panels", []) if p.get("targets")]
    columns = 2
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(14, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(panel["title"] + (f"  [{unit}]" if unit and unit != "short" else ""))
        if panel.get("type") == "stat":
            items = []
            for target in panel["targets"]:
                expr = substitute(target["expr"], range_s=range_s)
                for labels, points in query_instant(expr):
                    value = points[-1][1] if points else float("nan")
                    items.append((_legend(target.get("legendFormat", ""), labels), value))
            ax.axis("off")
            text = "\n".join(
                f"{name}: {value:,.1f}" if name and name != "value" else f"{value:,.1f}"
                for name, value in items
            )
            ax.text(0.5, 0.45, text or "no data", ha="center", va="center", fontsize=16)
            continue
        for target in panel["targets"]:
            expr = substitute(target["expr"], range_s=range_s)
            for labels, points in query_range(expr):
                xs = [datetime.fromtimestamp(t, UTC) for t, _ in points]
                ys = [v for _, v in points]
                ax.plot(
                    xs, ys, linewidth=1.2, label=_legend(target.get("legendFormat", ""), labels)
                )
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    figure.suptitle(model["title"] + (f" — {subtitle}" if subtitle else ""), fontsize=13)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
