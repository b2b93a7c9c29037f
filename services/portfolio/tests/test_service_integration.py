"""``python -m alchemiser_portfolio`` as a real process on the embedded broker, the registry
server, PostgreSQL and the paper exchange (in the test process): plans, redelivery, failures, a
crash, and one workflow at a time per account.

The module's tests share one database (and so the workflow ledger): each test's exchange numbers
its account afresh and the signals name it, and a test that plans twice for an account first
finishes the earlier workflow (a ``WorkflowCompleted``, as execution would publish it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser_broker import ACCOUNT_MISMATCH, OrderSide, OrderType
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
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, PaperExchange
from alchemiser_devtools.harness import Pipeline, StageProcess, distinct_ids, iter_dlq
from alchemiser_exchange import OrderSpec

pytestmark = pytest.mark.integration

SERVICE_MODULE = "alchemiser_portfolio"
STAGE = "portfolio"
# The session's bars (open, high, low, close), the sample signal's as_of (2025-03-14).
BARS: dict[str, Any] = {
    "TQQQ": ("70", "73", "69", "72.50"),
    "OKLO": ("30", "31", "29", "30.25"),
    "SMR": ("20", "21", "19", "20.10"),
    "SOXL": ("25", "26", "24", "25.00"),
}


@pytest.fixture
def paper_exchange(tmp_path: Path) -> Iterator[PaperExchange]:
    """The plugin's exchange, its account numbered afresh (the module shares one ledger), after
    buying 100 SOXL at the 25.00 close with its 100,000 cash."""
    exchange = PaperExchange(
        tmp_path / "paper-exchange", prices=dict(BARS), account_number=_fresh_account()
    )
    try:
        exchange.exchange.submit(
            exchange.account,
            OrderSpec(
                symbol="SOXL",
                side=OrderSide.BUY,
                order_type=OrderType.MARKET,
                qty=Decimal(100),
                client_order_id="seed",
            ),
        )
        yield exchange
    finally:
        exchange.stop()


def _fresh_account() -> str:
    return "PA" + uuid.uuid4().hex[:10].upper()


@pytest.fixture
def account_id(paper_exchange: PaperExchange) -> str:
    """The exchange's account: the signals' ``account_id``."""
    return paper_exchange.account


def _start(pipeline: Pipeline, exchange: PaperExchange, **env: str) -> StageProcess:
    return pipeline.start_module(
        SERVICE_MODULE,
        STAGE,
        ALCHEMISER_BROKER__KIND="exchange",
        ALCHEMISER_BROKER__EXCHANGE_URL=exchange.url,
        ALCHEMISER_ALPACA__API_KEY=API_KEY,
        ALCHEMISER_ALPACA__SECRET_KEY=SECRET_KEY,
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
    pipeline: Pipeline, paper_exchange: PaperExchange, account_id: str
) -> None:
    _start(pipeline, paper_exchange)
    signal = _signal(pipeline, account_id)
    pipeline.produce([signal])

    (record,) = _wait_for_output(pipeline, RebalancePlanned.TOPIC, signal)
    planned = pipeline.serde.deserialize(RebalancePlanned.TOPIC, record.value())
    assert isinstance(planned, RebalancePlanned)
    assert planned.plan_hash == plan_hash(planned.plan, signal.correlation_id)
    assert planned.causation_id == signal.event_id
    assert planned.source.service == "portfolio"
    assert planned.account_id == paper_exchange.account
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
    pipeline: Pipeline, paper_exchange: PaperExchange, account_id: str
) -> None:
    _start(pipeline, paper_exchange)
    unpriced = _signal(pipeline, account_id, {"TQQQ": "0.5", "LEU": "0.5"})
    invalid = _signal(pipeline, account_id, {"TQQQ": "0.5"})
    elsewhere = _signal(pipeline, _fresh_account())  # not the exchange account's signal
    pipeline.produce([unpriced, invalid, elsewhere])

    (record,) = _wait_for_output(pipeline, WorkflowFailed.TOPIC, unpriced)
    failed = pipeline.serde.deserialize(WorkflowFailed.TOPIC, record.value())
    assert isinstance(failed, WorkflowFailed)
    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.failed_symbols == ["LEU"]
    assert failed.account_id == paper_exchange.account
    pipeline.wait_for(
        lambda: bool(pipeline.read_all(dlq_topic(SignalGenerated.TOPIC))), "the dead letter"
    )
    (dead,) = pipeline.read_all(dlq_topic(SignalGenerated.TOPIC))
    (headers,) = iter_dlq([dead])
    assert headers["dlq.reason"] == "handler_rejected"
    assert pipeline.serde.deserialize(SignalGenerated.TOPIC, dead.value()) == invalid
    (record,) = _wait_for_output(pipeline, WorkflowFailed.TOPIC, elsewhere)
    mismatch = pipeline.serde.deserialize(WorkflowFailed.TOPIC, record.value())
    assert isinstance(mismatch, WorkflowFailed)
    assert mismatch.reason == ACCOUNT_MISMATCH
    assert mismatch.details["event_account_id"] == elsewhere.account_id
    assert mismatch.details["broker_account_number"] == paper_exchange.account
    assert _outputs(pipeline, RebalancePlanned.TOPIC, unpriced) == []
    assert _outputs(pipeline, RebalancePlanned.TOPIC, invalid) == []
    assert _outputs(pipeline, RebalancePlanned.TOPIC, elsewhere) == []


def test_service_when_killed_after_database_commit_then_exactly_one_plan_event_id(
    pipeline: Pipeline, paper_exchange: PaperExchange, account_id: str, tmp_path: Path
) -> None:
    pause_file = tmp_path / "paused"
    crashed = _start(
        pipeline,
        paper_exchange,
        ALCHEMISER_RUNTIME__PAUSE_AT=ProtocolStep.AFTER_DB_COMMIT.value,
        ALCHEMISER_RUNTIME__PAUSE_FILE=str(pause_file),
    )
    signal = _signal(pipeline, account_id)
    pipeline.produce([signal])
    pipeline.wait_for(pause_file.exists, "the service to commit its database transaction")
    crashed.kill()
    assert _outputs(pipeline, RebalancePlanned.TOPIC, signal) == []

    _start(pipeline, paper_exchange)
    pipeline.produce([sample_workflow_completed(signal)])  # the sentinel's account is free
    sentinel = _signal(pipeline, account_id)
    pipeline.produce([sentinel])
    _wait_for_output(pipeline, RebalancePlanned.TOPIC, sentinel)

    by_id = distinct_ids(_outputs(pipeline, RebalancePlanned.TOPIC, signal))
    assert len(by_id) == 1
    assert all(len(values) == 1 for values in by_id.values())


def test_service_when_two_signals_for_one_account_then_second_plan_waits_for_first_outcome(
    pipeline: Pipeline, paper_exchange: PaperExchange, account_id: str
) -> None:
    service = _start(pipeline, paper_exchange)
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
