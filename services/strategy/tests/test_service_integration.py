"""``python -m alchemiser_strategy`` as a real process: broker, registry, PostgreSQL inbox."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from alchemiser_common.events import (
    FailureStep,
    SignalGenerated,
    WorkflowFailed,
    WorkflowStarted,
    signal_hash,
)
from alchemiser_devtools.harness import Pipeline

pytestmark = pytest.mark.integration

IN_DATASET = date(2015, 6, 15)
OUTSIDE_DATASET = date(2030, 1, 2)


def _trigger(pipeline: Pipeline, as_of: date) -> WorkflowStarted:
    return pipeline.trigger().model_copy(update={"as_of": as_of})


def _events(pipeline: Pipeline, topic: str, trigger: WorkflowStarted) -> list[Any]:
    serde = pipeline.serde
    records = pipeline.outputs_by_correlation(topic).get(str(trigger.correlation_id), [])
    return [serde.deserialize(topic, record.value()) for record in records]


def test_service_when_triggered_inside_dataset_then_one_verified_signal_even_if_redelivered(
    pipeline: Pipeline,
) -> None:
    pipeline.start_module("alchemiser_strategy", "strategy")
    trigger = _trigger(pipeline, IN_DATASET)

    pipeline.produce([trigger])
    pipeline.wait_for(lambda: bool(_events(pipeline, SignalGenerated.TOPIC, trigger)), "the signal")
    pipeline.produce([trigger])  # redelivery of the same trigger
    sentinel = _trigger(pipeline, IN_DATASET)
    pipeline.produce([sentinel])
    pipeline.wait_for(
        lambda: bool(_events(pipeline, SignalGenerated.TOPIC, sentinel)), "the sentinel's signal"
    )

    (signal,) = _events(pipeline, SignalGenerated.TOPIC, trigger)
    assert isinstance(signal, SignalGenerated)
    assert signal.causation_id == trigger.event_id
    assert signal.as_of == IN_DATASET
    assert signal.source.service == "strategy"
    assert sum(weight.weight for weight in signal.consolidated_portfolio) == Decimal(1)
    assert signal.signal_hash == signal_hash(
        signal.consolidated_portfolio, signal.signals, trigger.correlation_id
    )
    assert _events(pipeline, WorkflowFailed.TOPIC, trigger) == []
    assert pipeline.read_all(WorkflowStarted.TOPIC + ".dlq") == []


def test_service_when_as_of_outside_dataset_then_workflow_failed_at_strategy(
    pipeline: Pipeline,
) -> None:
    pipeline.start_module("alchemiser_strategy", "strategy")
    trigger = _trigger(pipeline, OUTSIDE_DATASET)

    pipeline.produce([trigger])
    pipeline.wait_for(lambda: bool(_events(pipeline, WorkflowFailed.TOPIC, trigger)), "a failure")

    (failed,) = _events(pipeline, WorkflowFailed.TOPIC, trigger)
    assert isinstance(failed, WorkflowFailed)
    assert failed.failure_step is FailureStep.STRATEGY
    assert failed.causation_id == trigger.event_id
    assert OUTSIDE_DATASET.isoformat() in failed.reason
    assert failed.details["as_of"] == OUTSIDE_DATASET.isoformat()
    assert _events(pipeline, SignalGenerated.TOPIC, trigger) == []
