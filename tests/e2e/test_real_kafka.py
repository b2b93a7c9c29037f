"""What only a broker that honours transactions can show: isolation and fencing.

Runs where the session's broker is a real Kafka (``KAFKA_BOOTSTRAP_SERVERS=host:port make
e2e-full``, or testcontainers where a Docker daemon answers); skipped on the embedded tansu,
which neither hides aborted records from ``read_committed`` consumers nor fences producers.

* **Isolation**: a trigger written in a transaction that is then aborted is never acted on:
  no signal, no order, while a committed trigger after it completes.
* **Fencing**: a second execution instance with the same transactional id (same service name
  and instance id, a zombie's successor) fences the first: afterwards a workflow completes
  exactly once, with one settlement and each order once at the exchange.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from confluent_kafka import Producer

from alchemiser_common.events import SignalGenerated, TradeExecuted
from alchemiser_common.workflow import build_trigger
from alchemiser_devtools.broker import KafkaTestBroker
from alchemiser_devtools.system import ServiceProcess, TradingSystem
from tests.e2e.conftest import SystemFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def transactional_broker(kafka_broker: KafkaTestBroker, request: pytest.FixtureRequest) -> str:
    """The module's broker, if it honours transactions (else the test is skipped)."""
    if not kafka_broker.honours_transactions:
        pytest.skip(
            f"the {kafka_broker.kind.value} broker does not honour transactions; "
            "run with KAFKA_BOOTSTRAP_SERVERS=<a real Kafka> make e2e-full"
        )
    servers: str = request.getfixturevalue("private_broker")
    return servers


def _signals_of(system: TradingSystem, correlation_id: uuid.UUID) -> list[SignalGenerated]:
    return [e for e in system.events(SignalGenerated.TOPIC) if e.correlation_id == correlation_id]


def test_isolation_when_a_trigger_is_aborted_then_it_is_never_acted_on(
    transactional_broker: str, make_system: SystemFactory
) -> None:
    system = make_system(transactional_broker, api_key=f"e2e-isolation-{uuid.uuid4().hex[:6]}")
    aborted = build_trigger(system.account, requested_by="e2e-abort", as_of=date(2018, 6, 14))
    producer = Producer(
        {"bootstrap.servers": transactional_broker, "transactional.id": f"e2e-{uuid.uuid4()}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(aborted.TOPIC, system.serde.serialize(aborted), system.account.encode())
    producer.flush(10)
    producer.abort_transaction(30)

    committed = system.trigger(date(2018, 6, 15), rerun=False)
    assert system.wait_for_outcome(committed).succeeded
    assert _signals_of(system, committed.correlation_id)
    assert not _signals_of(system, aborted.correlation_id)
    orders = {order.client_order_id for order in system.orders()}
    assert not any(str(aborted.correlation_id) in order for order in orders)


def test_fencing_when_a_second_instance_takes_the_transactional_id_then_one_effect(
    transactional_broker: str, make_system: SystemFactory
) -> None:
    system = make_system(transactional_broker, api_key=f"e2e-fencing-{uuid.uuid4().hex[:6]}")
    first = system.services["execution"]
    successor = ServiceProcess(
        name="execution-successor",
        module=first.module,
        env=dict(first.env),  # same service name and instance id: same transactional id
        log_path=first.log_path.with_name("execution-successor.log"),
    )
    successor.start()
    try:
        system.wait_until(lambda: b'"running"' in successor.log_path.read_bytes(), "successor")
        trigger = system.trigger(date(2018, 6, 15), rerun=False)
        assert system.wait_for_outcome(trigger).succeeded
        settled = [
            e
            for e in system.events(TradeExecuted.TOPIC)
            if e.correlation_id == trigger.correlation_id
        ]
        assert len({e.event_id for e in settled}) == 1
        (executed,) = {e.event_id: e for e in settled}.values()
        placed = sorted(o.client_order_id for o in executed.orders if o.client_order_id)
        assert sorted(o.client_order_id for o in system.orders()) == placed
        # the fenced instance may not notice before its next transaction, but it never acts:
        # had both committed, the settlement or an order would be there twice
    finally:
        successor.stop()
