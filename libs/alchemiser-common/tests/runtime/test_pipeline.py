"""The runtime's exactly-once effect, shown by a two-stage pipeline of real processes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from alchemiser_common.events import RebalancePlanned, SignalGenerated, WorkflowStarted
from alchemiser_devtools.harness import Pipeline, distinct_ids

pytestmark = pytest.mark.integration

N_WORKFLOWS = 20


def test_pipeline_when_every_input_delivered_twice_then_one_effect_each(pipeline: Pipeline) -> None:
    pipeline.start("alchemiser_devtools.pipeline:STAGE_ONE", "one")
    pipeline.start("alchemiser_devtools.pipeline:STAGE_TWO", "two")
    triggers = [pipeline.trigger() for _ in range(N_WORKFLOWS)]
    pipeline.produce([event for trigger in triggers for event in (trigger, trigger)])
    wanted = {str(t.correlation_id) for t in triggers}
    pipeline.wait_for(
        lambda: wanted <= set(pipeline.outputs_by_correlation(RebalancePlanned.TOPIC)),
        "a plan for every workflow",
    )
    # Replay the whole input topic once more, then a sentinel behind it on the same partition.
    pipeline.produce(triggers)
    sentinel = pipeline.trigger()
    pipeline.produce([sentinel])
    pipeline.wait_for(
        lambda: (
            str(sentinel.correlation_id) in pipeline.outputs_by_correlation(RebalancePlanned.TOPIC)
        ),
        "the sentinel's plan",
    )

    for stage in ("one", "two"):
        effects = pipeline.effects(stage)
        assert {cid: effects.get(cid) for cid in wanted} == dict.fromkeys(wanted, 1)
    for topic in (SignalGenerated.TOPIC, RebalancePlanned.TOPIC):
        records = pipeline.read_all(topic)
        by_id = distinct_ids(records)
        # one event id per workflow, and no copies: duplicates of handled inputs emit nothing
        assert len(by_id) == N_WORKFLOWS + 1
        assert len(records) == N_WORKFLOWS + 1
    assert len(pipeline.read_all(WorkflowStarted.TOPIC + ".dlq")) == 0


def _process_spans(log_lines: list[str]) -> list[dict[str, Any]]:
    spans = []
    for line in log_lines:
        try:
            span = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(span, dict) and str(span.get("name", "")).endswith(" process"):
            spans.append(span)
    return spans


def test_pipeline_when_traced_then_one_workflow_is_one_trace_across_processes(
    pipeline: Pipeline,
) -> None:
    console = {"ALCHEMISER_OBSERVABILITY__OTEL_EXPORTER": "console"}
    one = pipeline.start("alchemiser_devtools.pipeline:STAGE_ONE", "one", **console)
    two = pipeline.start("alchemiser_devtools.pipeline:STAGE_TWO", "two", **console)
    trigger = pipeline.trigger()
    pipeline.produce([trigger])
    pipeline.wait_for(
        lambda: (
            str(trigger.correlation_id) in pipeline.outputs_by_correlation(RebalancePlanned.TOPIC)
        ),
        "the plan",
    )
    assert one.terminate() == 0
    assert two.terminate() == 0  # exporting flushes at exit
    first = _process_spans(one.log_path.read_text().splitlines())
    second = _process_spans(two.log_path.read_text().splitlines())
    assert len(first) == 1
    assert len(second) == 1
    assert first[0]["context"]["trace_id"] == second[0]["context"]["trace_id"]
    assert second[0]["parent_id"] == first[0]["context"]["span_id"]


def test_stage_when_partitions_assigned_then_ready_and_metrics_named(pipeline: Pipeline) -> None:
    stage = pipeline.start("alchemiser_devtools.pipeline:STAGE_ONE", "one")
    base = stage.metrics_url().removesuffix("/metrics")
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    pipeline.wait_for(
        lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, "readiness"
    )
    trigger = pipeline.trigger()
    pipeline.produce([trigger, trigger])
    pipeline.wait_for(
        lambda: stage.metric("event_published_total", topic=SignalGenerated.TOPIC) == 1,
        "one published signal",
    )
    assert stage.metric("event_consumed_total", outcome="handled") == 1
    assert stage.metric("dedupe_hits_total", event_type="WorkflowStarted") == 1
    assert stage.metric("event_handler_latency_ms_count", event_type="WorkflowStarted") == 1
