"""The full chain, for several accounts and sessions: every process separate (registry, paper
exchange, strategy, portfolio, execution), each account its own deployment.

Every workflow completes; its events chain by causation id trigger -> signal -> plan ->
settled -> completed, all carry the workflow's correlation id and the account, and all of a
workflow's records carry one trace id (W3C ``traceparent``) that no other workflow has. The
exchange holds exactly the orders the settled events report.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from itertools import pairwise

import pytest

from alchemiser_common.events import (
    RebalancePlanned,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_devtools.system import Record, TradingSystem
from tests.e2e.conftest import SystemFactory, scale

pytestmark = pytest.mark.integration

SESSIONS = (date(2018, 6, 13), date(2018, 6, 14), date(2018, 6, 15), date(2018, 6, 18))
CHAIN = (SignalGenerated, RebalancePlanned, TradeExecuted, WorkflowCompleted)


def trace_id(record: Record) -> str:
    """The trace id of a record's ``traceparent`` header (``00-<trace>-<span>-<flags>``)."""
    return record.headers["traceparent"].decode().split("-")[1]


def by_workflow(system: TradingSystem, topic: str) -> dict[str, list[Record]]:
    """A topic's records grouped by the correlation id of their event."""
    grouped: dict[str, list[Record]] = defaultdict(list)
    for record in system.records(topic):
        grouped[str(record.event.correlation_id)].append(record)
    return grouped


def assert_chains(system: TradingSystem, triggers: list) -> None:
    """Each trigger's workflow: one event per step, chained, one trace id of its own."""
    steps = {kind: by_workflow(system, kind.TOPIC) for kind in CHAIN}
    ours = {trigger.correlation_id for trigger in triggers}
    assert not [e for e in system.events(WorkflowFailed.TOPIC) if e.correlation_id in ours]
    traces: dict[str, str] = {}
    settled_orders = 0
    for trigger in triggers:
        workflow = str(trigger.correlation_id)
        chain = [trigger]
        records = []
        for kind in CHAIN:
            (record,) = steps[kind][workflow]  # exactly one per step
            records.append(record)
            chain.append(record.event)
        for cause, effect in pairwise(chain):
            assert effect.causation_id == cause.event_id, (type(effect).__name__, workflow)
        assert {event.account_id for event in chain} == {system.account}
        assert {event.correlation_id for event in chain} == {trigger.correlation_id}
        (trace,) = {trace_id(record) for record in records}
        assert trace not in traces.values(), "two workflows share a trace"
        traces[workflow] = trace
        executed = chain[3]
        assert executed.success
        settled_orders += executed.orders_placed
    assert len(system.orders()) == settled_orders


def test_chain_when_several_accounts_run_sessions_then_every_workflow_chains_and_completes(
    private_broker: str, make_system: SystemFactory
) -> None:
    sessions = SESSIONS[: scale(2, len(SESSIONS))]
    for index in range(scale(1, 2)):  # one deployment per account, one after the other
        # an account per key pair; each deployment on its own topics' consumer groups
        system = make_system(
            private_broker, api_key=f"e2e-chain-{index}", secret_key=f"chain-secret-{index}"
        )
        triggers = []
        for session in sessions:
            trigger = system.trigger(session, rerun=False)
            outcome = system.wait_for_outcome(trigger)
            assert outcome.succeeded, outcome.event
            triggers.append(trigger)
        assert_chains(system, triggers)
        system.stop()
