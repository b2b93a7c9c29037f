"""``python -m alchemiser_portfolio`` as a real process on the embedded broker, the registry
server, PostgreSQL and the simulated broker: plans, redelivery, failures, a crash, and one
workflow at a time per account.

The module's tests share one database (and so the workflow ledger): each signs its signals with
its own fresh account, and a test that plans twice for an account first finishes the earlier
workflow (a ``WorkflowCompleted``, as execution would publish it)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser_broker import OrderRequest, OrderSide
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import (
    RebalancePlanned,
    SignalGenerated,
    TargetWeight,
    WorkflowCompleted,
    WorkflowFailed,
    plan_hash,
)
from alchemiser_common.events.enums import FailureStep, PlanAction
from alchemiser_common.events.samples import (
    sample_signal_generated,
    sample_workflow_completed,
    sample_workflow_failed,
)
from alchemiser_common.runtime.loop import ProtocolStep
from alchemiser_common.topics import dlq_topic
from alchemiser_devtools.harness import Pipeline, StageProcess, distinct_ids, iter_dlq
from alchemiser_marketdata import DatasetMarketData

pytestmark = pytest.mark.integration

SERVICE_MODULE = "alchemiser_portfolio"
STAGE = "portfolio"
BARS = """date,symbol,open,high,low,close,volume
2025-03-13,TQQQ,70,71,69,70.00,1000
2025-03-14,TQQQ,70,73,69,72.50,1000
2025-03-14,OKLO,30,31,29,30.25,1000
2025-03-14,SMR,20,21,19,20.10,1000
2025-03-14,SOXL,25,26,24,25.00,1000
"""


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bars"
    directory.mkdir()
    (directory / "bars.csv").write_text(BARS, encoding="utf-8")
    return directory


@pytest.fixture
def account_id(pipeline: Pipeline, dataset_dir: Path) -> str:
    """A fresh simulated account (100,000 cash) holding 100 SOXL bought at 25.00."""
    account = f"sim-{uuid.uuid4().hex[:12]}"
    engine = create_engine_from_url(pipeline.database_url)
    try:
        broker = SimulatedBroker(
            engine, DatasetMarketData(dataset_dir), SimulatedBrokerSettings(account_id=account)
        )
        broker.migrate()
        broker.submit_order(
            OrderRequest(
                client_order_id="seed", symbol="SOXL", side=OrderSide.BUY, qty=Decimal(100)
            )
        )
    finally:
        engine.dispose()
    return account


def _start(pipeline: Pipeline, dataset_dir: Path, account_id: str, **env: str) -> StageProcess:
    return pipeline.start_module(
        SERVICE_MODULE,
        STAGE,
        ALCHEMISER_BROKER__KIND="simulated",
        ALCHEMISER_BROKER__SIMULATED__DATASET_DIR=str(dataset_dir),
        ALCHEMISER_BROKER__SIMULATED__ACCOUNT_ID=account_id,
        **env,
    )


def _signal(
    pipeline: Pipeline, account_id: str, weights: dict[str, str] | None = None
) -> SignalGenerated:
    trigger = pipeline.trigger().model_copy(update={"account_id": account_id})
    signal = sample_signal_generated(trigger)
    if weights is None:
        return signal
    portfolio = [TargetWeight(symbol=s, weight=Decimal(w)) for s, w in weights.items()]
    return signal.model_copy(update={"consolidated_portfolio": portfolio})


def _outputs(pipeline: Pipeline, topic: str, signal: SignalGenerated) -> list[Any]:
    return pipeline.outputs_by_correlation(topic).get(str(signal.correlation_id), [])


def _wait_for_output(pipeline: Pipeline, topic: str, signal: SignalGenerated) -> list[Any]:
    pipeline.wait_for(lambda: bool(_outputs(pipeline, topic, signal)), f"an output on {topic}")
    return _outputs(pipeline, topic, signal)


def test_service_when_signal_consumed_then_one_verifiable_plan_and_redelivery_adds_none(
    pipeline: Pipeline, dataset_dir: Path, account_id: str
) -> None:
    _start(pipeline, dataset_dir, account_id)
    signal = _signal(pipeline, account_id)
    pipeline.produce([signal])

    (record,) = _wait_for_output(pipeline, RebalancePlanned.TOPIC, signal)
    planned = pipeline.serde.deserialize(RebalancePlanned.TOPIC, record.value())
    assert isinstance(planned, RebalancePlanned)
    assert planned.plan_hash == plan_hash(planned.plan, signal.correlation_id)
    assert planned.causation_id == signal.event_id
    assert planned.source.service == "portfolio"
    assert [(i.symbol, i.action, i.trade_amount) for i in planned.plan.items] == [
        ("SOXL", PlanAction.SELL, Decimal("-2500")),
        ("TQQQ", PlanAction.BUY, Decimal("49500")),
        ("OKLO", PlanAction.BUY, Decimal("33000")),
        ("SMR", PlanAction.BUY, Decimal("16500")),
    ]

    # The same signal again, then a sentinel behind it on the same partition (a later workflow
    # of the account: it is planned once the first workflow finished).
    pipeline.produce([signal])
    pipeline.produce([sample_workflow_completed(signal)])
    sentinel = _signal(pipeline, account_id)
    pipeline.produce([sentinel])
    _wait_for_output(pipeline, RebalancePlanned.TOPIC, sentinel)
    assert len(_outputs(pipeline, RebalancePlanned.TOPIC, signal)) == 1


def test_service_when_price_missing_or_weights_invalid_then_failed_workflow_and_dead_letter(
    pipeline: Pipeline, dataset_dir: Path, account_id: str
) -> None:
    _start(pipeline, dataset_dir, account_id)
    unpriced = _signal(pipeline, account_id, {"TQQQ": "0.5", "LEU": "0.5"})
    invalid = _signal(pipeline, account_id, {"TQQQ": "0.5"})
    pipeline.produce([unpriced, invalid])

    (record,) = _wait_for_output(pipeline, WorkflowFailed.TOPIC, unpriced)
    failed = pipeline.serde.deserialize(WorkflowFailed.TOPIC, record.value())
    assert isinstance(failed, WorkflowFailed)
    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.failed_symbols == ["LEU"]
    pipeline.wait_for(
        lambda: bool(pipeline.read_all(dlq_topic(SignalGenerated.TOPIC))), "the dead letter"
    )
    (dead,) = pipeline.read_all(dlq_topic(SignalGenerated.TOPIC))
    (headers,) = iter_dlq([dead])
    assert headers["dlq.reason"] == "handler_rejected"
    assert pipeline.serde.deserialize(SignalGenerated.TOPIC, dead.value()) == invalid
    assert _outputs(pipeline, RebalancePlanned.TOPIC, unpriced) == []
    assert _outputs(pipeline, RebalancePlanned.TOPIC, invalid) == []


def test_service_when_killed_after_database_commit_then_exactly_one_plan_event_id(
    pipeline: Pipeline, dataset_dir: Path, account_id: str, tmp_path: Path
) -> None:
    pause_file = tmp_path / "paused"
    crashed = _start(
        pipeline,
        dataset_dir,
        account_id,
        ALCHEMISER_RUNTIME__PAUSE_AT=ProtocolStep.AFTER_DB_COMMIT.value,
        ALCHEMISER_RUNTIME__PAUSE_FILE=str(pause_file),
    )
    signal = _signal(pipeline, account_id)
    pipeline.produce([signal])
    pipeline.wait_for(pause_file.exists, "the service to commit its database transaction")
    crashed.kill()
    assert _outputs(pipeline, RebalancePlanned.TOPIC, signal) == []

    _start(pipeline, dataset_dir, account_id)
    pipeline.produce([sample_workflow_completed(signal)])  # the sentinel's account is free
    sentinel = _signal(pipeline, account_id)
    pipeline.produce([sentinel])
    _wait_for_output(pipeline, RebalancePlanned.TOPIC, sentinel)

    by_id = distinct_ids(_outputs(pipeline, RebalancePlanned.TOPIC, signal))
    assert len(by_id) == 1
    assert all(len(values) == 1 for values in by_id.values())


def test_service_when_two_signals_for_one_account_then_second_plan_waits_for_first_outcome(
    pipeline: Pipeline, dataset_dir: Path, account_id: str
) -> None:
    service = _start(pipeline, dataset_dir, account_id)
    first, second, third = (_signal(pipeline, account_id) for _ in range(3))
    pipeline.produce([first, second])

    _wait_for_output(pipeline, RebalancePlanned.TOPIC, first)
    pipeline.wait_for(
        lambda: any(
            line.get("message") == "waiting for the account's previous workflow to finish"
            for line in service.log_lines()
        ),
        "the second signal to wait for the first workflow",
    )
    assert _outputs(pipeline, RebalancePlanned.TOPIC, second) == []

    completed = sample_workflow_completed(first)
    pipeline.produce([completed, completed])  # redelivered: recorded once, no dead letter
    (record,) = _wait_for_output(pipeline, RebalancePlanned.TOPIC, second)
    planned = pipeline.serde.deserialize(RebalancePlanned.TOPIC, record.value())
    assert planned.causation_id == second.event_id

    # a failed workflow frees the account as well
    pipeline.produce([third, sample_workflow_failed(second)])
    _wait_for_output(pipeline, RebalancePlanned.TOPIC, third)
    for topic in (SignalGenerated.TOPIC, WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC):
        assert pipeline.read_all(dlq_topic(topic)) == []
    assert _outputs(pipeline, WorkflowFailed.TOPIC, third) == []
