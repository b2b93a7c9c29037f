"""Crash at each step of the commit protocol, and shut down with SIGTERM: one effect per input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alchemiser_common.events import SignalGenerated, WorkflowStarted
from alchemiser_common.runtime.loop import ProtocolStep
from alchemiser_devtools.harness import STAGE_ONE, Pipeline, distinct_ids

pytestmark = pytest.mark.integration

N_WORKFLOWS = 5


def _assert_one_effect_and_one_output_each(pipeline: Pipeline, correlation_ids: set[str]) -> None:
    effects = pipeline.effects("one")
    assert {cid: effects.get(cid) for cid in correlation_ids} == dict.fromkeys(correlation_ids, 1)
    outputs = pipeline.outputs_by_correlation(SignalGenerated.TOPIC)
    assert correlation_ids <= set(outputs)
    for cid in correlation_ids:
        # re-emitted copies (if any) carry the same event id and the same bytes
        by_id = distinct_ids(outputs[cid])
        assert len(by_id) == 1
        assert all(len(values) == 1 for values in by_id.values())


@pytest.mark.parametrize("step", list(ProtocolStep), ids=lambda step: step.value)
def test_stage_when_killed_at_protocol_step_then_every_input_has_one_effect(
    pipeline: Pipeline, step: ProtocolStep, tmp_path: Path
) -> None:
    pause_file = tmp_path / "paused"
    crashed = pipeline.start(
        STAGE_ONE,
        "one",
        ALCHEMISER_RUNTIME__PAUSE_AT=step.value,
        ALCHEMISER_RUNTIME__PAUSE_FILE=str(pause_file),
    )
    triggers = [pipeline.trigger() for _ in range(N_WORKFLOWS)]
    pipeline.produce(triggers)
    pipeline.wait_for(pause_file.exists, f"the stage to reach {step.value}")
    crashed.kill()

    pipeline.start(STAGE_ONE, "one")
    sentinel = pipeline.trigger()
    pipeline.produce([sentinel])
    pipeline.wait_for(
        lambda: (
            str(sentinel.correlation_id) in pipeline.outputs_by_correlation(SignalGenerated.TOPIC)
        ),
        "the sentinel's signal after the restart",
    )
    wanted = {str(t.correlation_id) for t in [*triggers, sentinel]}
    _assert_one_effect_and_one_output_each(pipeline, wanted)


def test_stage_when_paused_before_kafka_commit_then_group_offset_unchanged(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pause_file = tmp_path / "paused"
    stage = pipeline.start(
        STAGE_ONE,
        "one",
        ALCHEMISER_RUNTIME__PAUSE_AT=ProtocolStep.AFTER_DB_COMMIT.value,
        ALCHEMISER_RUNTIME__PAUSE_FILE=str(pause_file),
    )
    triggers = [pipeline.trigger() for _ in range(3)]
    wanted = {str(t.correlation_id) for t in triggers}
    pipeline.produce(triggers)
    pipeline.wait_for(pause_file.exists, "the stage to commit its database transaction")
    # The database has the effect, but the group's offset moves only with the Kafka commit.
    assert wanted & set(pipeline.effects("one"))
    assert pipeline.committed_offset("one", WorkflowStarted.TOPIC) < 0
    stage.kill()

    pipeline.start(STAGE_ONE, "one")
    pipeline.wait_for(
        lambda: pipeline.committed_offset("one", WorkflowStarted.TOPIC) == 3,
        "the offset to advance through the transaction",
    )
    effects = pipeline.effects("one")
    assert {cid: effects.get(cid) for cid in wanted} == dict.fromkeys(wanted, 1)


def test_stage_when_sigterm_then_exits_zero_and_loses_no_record(pipeline: Pipeline) -> None:
    stage = pipeline.start(STAGE_ONE, "one")
    first = [pipeline.trigger() for _ in range(N_WORKFLOWS)]
    pipeline.produce(first)
    pipeline.wait_for(
        lambda: (
            {str(t.correlation_id) for t in first}
            <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC))
        ),
        "the first batch's signals",
    )
    assert stage.terminate(timeout=30) == 0
    assert any(line.get("message") == "stopped cleanly" for line in stage.log_lines())

    # Produced while no instance runs: picked up by the next one, none lost, none doubled.
    second = [pipeline.trigger() for _ in range(N_WORKFLOWS)]
    pipeline.produce(second)
    pipeline.start(STAGE_ONE, "one")
    wanted = {str(t.correlation_id) for t in [*first, *second]}
    pipeline.wait_for(
        lambda: wanted <= set(pipeline.outputs_by_correlation(SignalGenerated.TOPIC)),
        "every signal after the restart",
    )
    _assert_one_effect_and_one_output_each(pipeline, wanted)


def test_stage_when_stuck_mid_batch_then_sigterm_ends_it_within_the_shutdown_bound(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # The pause hook blocks the loop's worker forever (as a Kafka call that never returns
    # would); the main thread still takes SIGTERM and the watchdog ends the process.
    pause_file = tmp_path / "paused"
    stage = pipeline.start(
        STAGE_ONE,
        "one",
        ALCHEMISER_RUNTIME__PAUSE_AT=ProtocolStep.AFTER_DB_COMMIT.value,
        ALCHEMISER_RUNTIME__PAUSE_FILE=str(pause_file),
        ALCHEMISER_RUNTIME__SHUTDOWN_TIMEOUT_S="2",
    )
    pipeline.produce([pipeline.trigger()])
    pipeline.wait_for(pause_file.exists, "the stage to block mid-batch")

    started = time.monotonic()
    code = stage.terminate(timeout=30)

    assert code == 1  # not a clean stop: the batch never finished
    assert time.monotonic() - started < 2 + 5  # the bound, plus process start-up slack
    assert any(
        line.get("message") == "shutdown took longer than the bound; exiting"
        for line in stage.log_lines()
    )
