"""The runtime's exactly-once effect, shown by a two-stage pipeline of real processes."""

from __future__ import annotations

import pytest

from alchemiser_common.events import RebalancePlanned, SignalGenerated, WorkflowStarted
from alchemiser_common.testing.harness import Pipeline, distinct_ids

pytestmark = pytest.mark.integration

N_WORKFLOWS = 20


def test_pipeline_when_every_input_delivered_twice_then_one_effect_each(pipeline: Pipeline) -> None:
    pipeline.start("alchemiser_common.testing.pipeline:register_stage_one", "one")
    pipeline.start("alchemiser_common.testing.pipeline:register_stage_two", "two")
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
