"""``python -m alchemiser_execution`` as a process: embedded Kafka, registry, PostgreSQL and
the paper exchange (running in the test process, reached over HTTP and its trade-updates
stream through the real Alpaca adapter).

(a) a plan becomes ``TradeExecuted`` + ``WorkflowCompleted``;
(c) the defaults: broker kind ``exchange`` with the local identity (no Alpaca keys: the
    exchange opens the account on first use) and one SQLite file (the inbox and the attempts
    share the service database: no transaction is held while the handler runs);
(b) the crash test: the service blocks right after the broker accepted the first order (the
    ``ALCHEMISER_EXECUTION__BLOCK_AFTER_SUBMIT_FILE`` test hook: the attempt is still PENDING
    and nothing is committed), is SIGKILLed and restarted: exactly one order per intent at the
    broker and one ``TradeExecuted`` event id;
(d) plans without a started workflow: a forged plan (weights summing to 3, its hash
    recomputed) and a plausible plan nobody triggered end in the dead-letter topic with no
    order at the broker, and so does a valid plan of a workflow that already failed (seen on
    ``workflow.failed.v1``), with no outcome of its own, while a plan whose trigger came first
    executes.

Execution acts only on plans of workflows it saw started, so each test produces the plan's
trigger (``workflow.started.v1``) before the plan, as the real workflow does.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alchemiser_broker.settings import LOCAL_EXCHANGE_KEY_ID
from alchemiser_common.events import (
    RebalancePlanned,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_devtools.exchange import API_KEY, SECRET_KEY, PaperExchange
from alchemiser_devtools.harness import Pipeline, distinct_ids, iter_dlq
from alchemiser_exchange import account_number_for
from alchemiser_execution.adapters.schema import attempt_table
from alchemiser_execution.domain.attempts import UNRESOLVED_STATES, AttemptState
from alchemiser_execution.domain.legs import client_order_id
from alchemiser_execution.testing import buy, failure_for, planned, sell, trigger_for

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    paper_exchange.set_prices({"SOXL": "25", "TQQQ": "50"})
    paper_exchange.exchange.set_position(paper_exchange.account, "SOXL", Decimal(400), Decimal(20))
    return paper_exchange


def _env(exchange: PaperExchange, **extra: str) -> dict[str, str]:
    return {
        "ALCHEMISER_BROKER__KIND": "exchange",
        "ALCHEMISER_BROKER__EXCHANGE_URL": exchange.url,
        "ALCHEMISER_ALPACA__API_KEY": API_KEY,
        "ALCHEMISER_ALPACA__SECRET_KEY": SECRET_KEY,
        "ALCHEMISER_ALPACA__RETRY_BACKOFF_S": "0.05",
        "ALCHEMISER_EXECUTION__FILL_POLL_INTERVAL_S": "0.05",
        "ALCHEMISER_EXECUTION__FILL_TIMEOUT_S": "5",
        "ALCHEMISER_EXECUTION__BUYING_POWER_TIMEOUT_S": "2",
        **extra,
    }


def _decoded(pipeline: Pipeline, topic: str, correlation_id: str) -> list[Any]:
    serde = pipeline.serde
    return [
        serde.deserialize(topic, record.value())
        for record in pipeline.outputs_by_correlation(topic).get(correlation_id, [])
    ]


def _completed(pipeline: Pipeline, correlation_id: str) -> bool:
    return correlation_id in pipeline.outputs_by_correlation(WorkflowCompleted.TOPIC)


def _produce_started(pipeline: Pipeline, event: RebalancePlanned) -> None:
    """Produce ``event``'s trigger, then ``event``: the order of a real workflow."""
    pipeline.produce([trigger_for(event)])
    pipeline.produce([event])


def _plan(exchange: PaperExchange) -> RebalancePlanned:
    return planned([sell("SOXL", "5000"), buy("TQQQ", "2000")], account_id=exchange.account)


def _orders_created(exchange: PaperExchange, client_order_id: str) -> int:
    return len(exchange.orders_for(client_order_id))


def test_service_when_plan_arrives_then_trade_executed_and_workflow_completed(
    pipeline: Pipeline, exchange: PaperExchange
) -> None:
    pipeline.start_module("alchemiser_execution", "execution", **_env(exchange))
    event = _plan(exchange)
    cid = str(event.correlation_id)
    _produce_started(pipeline, event)
    pipeline.wait_for(lambda: _completed(pipeline, cid), "WorkflowCompleted")

    (executed,) = _decoded(pipeline, TradeExecuted.TOPIC, cid)
    (completed,) = _decoded(pipeline, WorkflowCompleted.TOPIC, cid)
    assert isinstance(executed, TradeExecuted) and executed.success
    assert [(o.symbol, o.filled_qty) for o in executed.orders] == [
        ("SOXL", Decimal(200)),
        ("TQQQ", Decimal(40)),
    ]
    assert completed.summary.symbols_sold == ["SOXL"]
    assert executed.causation_id == event.event_id
    assert completed.causation_id == executed.event_id
    for leg in range(2):
        intent = client_order_id(event.correlation_id, event.plan_hash, leg)
        assert _orders_created(exchange, intent) == 1


def test_service_when_killed_after_broker_accepted_then_restart_leaves_one_order_per_intent(
    pipeline: Pipeline, exchange: PaperExchange, tmp_path: Path
) -> None:
    marker = tmp_path / "accepted"
    crashed = pipeline.start_module(
        "alchemiser_execution",
        "execution",
        **_env(exchange, ALCHEMISER_EXECUTION__BLOCK_AFTER_SUBMIT_FILE=str(marker)),
    )
    event = _plan(exchange)
    cid = str(event.correlation_id)
    intents = [client_order_id(event.correlation_id, event.plan_hash, leg) for leg in range(2)]
    _produce_started(pipeline, event)
    pipeline.wait_for(marker.exists, "the broker to accept the first order")
    assert marker.read_text() == intents[0]
    assert _orders_created(exchange, intents[0]) == 1
    assert _pending_attempts(pipeline.database_url, cid) == [intents[0]]
    crashed.kill()
    assert _decoded(pipeline, TradeExecuted.TOPIC, cid) == []

    pipeline.start_module("alchemiser_execution", "execution", **_env(exchange))
    pipeline.wait_for(lambda: _completed(pipeline, cid), "WorkflowCompleted after the restart")

    assert [_orders_created(exchange, intent) for intent in intents] == [1, 1]
    executed_ids = distinct_ids(pipeline.outputs_by_correlation(TradeExecuted.TOPIC)[cid])
    assert len(executed_ids) == 1
    states = _attempt_states(pipeline.database_url, cid)
    assert states == [AttemptState.FILLED, AttemptState.FILLED]
    assert not set(states) & UNRESOLVED_STATES


def test_service_when_default_exchange_identity_on_sqlite_then_plan_completes(
    pipeline: Pipeline,
    paper_exchange: PaperExchange,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paper_exchange.set_prices({"SPY": "510.25"})
    database = tmp_path / "db" / "execution.sqlite"
    for name in list(os.environ):  # the defaults under test: no broker kind, no Alpaca keys
        if name.startswith(("ALCHEMISER_BROKER__", "ALCHEMISER_ALPACA__")):
            monkeypatch.delenv(name)
    pipeline.start_module(
        "alchemiser_execution",
        "execution",
        ALCHEMISER_DATABASE__URL=f"sqlite:///{database}",
        ALCHEMISER_BROKER__EXCHANGE_URL=paper_exchange.url,
        ALCHEMISER_EXECUTION__FILL_POLL_INTERVAL_S="0.05",
    )
    # the account the exchange opens for the local identity on its first request
    local_account = account_number_for(LOCAL_EXCHANGE_KEY_ID)
    event = planned([buy("SPY", "5102.50")], account_id=local_account)
    cid = str(event.correlation_id)
    _produce_started(pipeline, event)
    pipeline.wait_for(lambda: _completed(pipeline, cid), "WorkflowCompleted (local exchange)")

    (executed,) = _decoded(pipeline, TradeExecuted.TOPIC, cid)
    assert [(o.symbol, o.filled_qty) for o in executed.orders] == [("SPY", Decimal(10))]
    (held,) = paper_exchange.exchange.positions(local_account)
    assert (held.symbol, held.qty) == ("SPY", Decimal(10))
    # one file holds the inbox and the attempts: no sibling files
    assert sorted(path.name for path in database.parent.glob("*.sqlite")) == ["execution.sqlite"]
    assert _attempt_states(f"sqlite:///{database}", cid) == [AttemptState.FILLED]


def test_service_when_plans_have_no_started_workflow_then_dead_lettered_and_no_order(
    pipeline: Pipeline, exchange: PaperExchange
) -> None:
    pipeline.start_module(
        "alchemiser_execution",
        "execution",
        **_env(exchange, ALCHEMISER_EXECUTION__WORKFLOW_WAIT_S="2"),
    )
    account = exchange.account
    forged = planned(  # weights summing to 3; planned() recomputes the plan hash
        [
            buy("TQQQ", "90000", weight="1"),
            buy("SOXL", "90000", weight="1"),
            buy("SPY", "90000", weight="1"),
        ],
        account_id=account,
    )
    untriggered = planned([buy("TQQQ", "2000")], account_id=account)  # nobody triggered it
    ended = planned([buy("TQQQ", "2000")], account_id=account)  # its --wait timed out
    failure = failure_for(ended, reason="timeout")
    triggered = _plan(exchange)
    pipeline.produce([trigger_for(triggered), trigger_for(ended)])
    pipeline.produce([failure])
    pipeline.produce([forged, untriggered, ended, triggered])  # one partition, in order
    cid = str(triggered.correlation_id)
    pipeline.wait_for(lambda: _completed(pipeline, cid), "WorkflowCompleted of the triggered plan")

    dead = pipeline.read_all(f"{RebalancePlanned.TOPIC}.dlq")
    serde = pipeline.serde
    reasons = {
        str(serde.deserialize(RebalancePlanned.TOPIC, record.value()).correlation_id): (
            headers["dlq.reason"]
        )
        for record, headers in zip(dead, iter_dlq(dead), strict=True)
    }
    assert reasons == {
        str(forged.correlation_id): "invalid_plan",
        str(untriggered.correlation_id): "unknown_workflow",
        str(ended.correlation_id): "workflow_ended",
    }
    failures = [
        serde.deserialize(WorkflowFailed.TOPIC, r.value())
        for r in pipeline.read_all(WorkflowFailed.TOPIC)
    ]
    assert [f for f in failures if f.correlation_id == ended.correlation_id] == [failure]
    for rejected in (forged, untriggered, ended):
        assert _decoded(pipeline, TradeExecuted.TOPIC, str(rejected.correlation_id)) == []
        assert not _completed(pipeline, str(rejected.correlation_id))
        assert _attempt_rows(pipeline.database_url, str(rejected.correlation_id)) == []
        for leg in range(3):
            intent = client_order_id(rejected.correlation_id, rejected.plan_hash, leg)
            assert _orders_created(exchange, intent) == 0
    # the broker holds the triggered plan's two orders and nothing else
    assert len(exchange.orders()) == 2
    (executed,) = _decoded(pipeline, TradeExecuted.TOPIC, cid)
    assert executed.success


def _attempt_rows(database_url: str, correlation_id: str) -> list[Any]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(attempt_table.c.client_order_id, attempt_table.c.state)
                    .where(attempt_table.c.correlation_id == correlation_id)
                    .order_by(attempt_table.c.leg, attempt_table.c.attempt)
                )
            )
    finally:
        engine.dispose()


def _pending_attempts(database_url: str, correlation_id: str) -> list[str]:
    return [
        cid
        for cid, state in _attempt_rows(database_url, correlation_id)
        if state == AttemptState.PENDING.value
    ]


def _attempt_states(database_url: str, correlation_id: str) -> list[AttemptState]:
    return [AttemptState(state) for _cid, state in _attempt_rows(database_url, correlation_id)]
