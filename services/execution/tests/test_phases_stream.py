"""Fills learned from the broker's order updates stream, REST polling only while it is down;
and what a phase reports when it reaches its time bound."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_broker import (
    AccountState,
    AssetInfo,
    BrokerOrder,
    BrokerPosition,
    BrokerUnavailableError,
    MarketClock,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    Quote,
)
from alchemiser_broker.stream import OrderUpdates
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import OrderSide, OrderType
from alchemiser_common.observability import Metrics
from alchemiser_execution import phases
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.domain.attempts import Attempt, AttemptState
from alchemiser_execution.domain.runs import ExecutionRun, RunStatus
from alchemiser_execution.domain.sizing import PlannedOrder
from alchemiser_execution.exceptions import OrderOutcomeUnknownError
from alchemiser_execution.executor import Executor
from alchemiser_execution.orders import OrderDesk
from alchemiser_execution.phases import (
    LIVE_WAIT_MAX_S,
    ExecutionConfig,
    PhaseRunner,
    client_order_id_for,
)
from alchemiser_execution.testing import (
    FAST_CONFIG,
    TEST_ACCOUNT,
    buy,
    execution_request,
    planned,
)

PRICE = Decimal("50.00")


class PaperBroker:
    """An in-memory broker: orders stay open until the test fills them; REST reads counted."""

    def __init__(self) -> None:
        self.orders: dict[str, BrokerOrder] = {}
        self.lookups: list[str] = []
        self._ids = 0

    # -- what the tests drive

    def fill(self, client_order_id: str, price: Decimal = PRICE) -> BrokerOrder:
        """Fill the order at the broker; return its new state (what the stream would push)."""
        order = self.orders[client_order_id]
        now = datetime.now(UTC)
        filled = dataclasses.replace(
            order,
            status=OrderStatus.FILLED,
            filled_qty=order.qty or Decimal(0),
            filled_avg_price=price,
            filled_at=now,
            updated_at=now,
        )
        self.orders[client_order_id] = filled
        return filled

    # -- the port

    def get_account(self) -> AccountState:
        cash = Decimal(1_000_000)
        return AccountState(
            account_id=TEST_ACCOUNT,
            cash=cash,
            buying_power=cash,
            equity=cash,
            account_number=TEST_ACCOUNT,
        )

    def get_positions(self) -> list[BrokerPosition]:
        return []

    def get_position(self, symbol: str) -> BrokerPosition | None:
        return None

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        return dict.fromkeys(symbols, PRICE)

    def get_quote(self, symbol: str) -> Quote | None:
        return None

    def get_clock(self) -> MarketClock:
        now = datetime.now(UTC)
        return MarketClock(
            timestamp=now,
            is_open=True,
            next_open=now + timedelta(days=1),
            next_close=now + timedelta(hours=1),
        )

    def get_asset(self, symbol: str) -> AssetInfo:
        return AssetInfo(symbol=symbol, fractionable=True, tradable=True)

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            return existing
        self._ids += 1
        now = datetime.now(UTC)
        order = BrokerOrder(
            broker_order_id=f"order-{self._ids}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            status=OrderStatus.NEW,
            qty=request.qty,
            limit_price=request.limit_price,
            submitted_at=now,
            updated_at=now,
        )
        self.orders[request.client_order_id] = order
        return order

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        self.lookups.append(client_order_id)
        return self.orders.get(client_order_id)

    def cancel_order(self, broker_order_id: str) -> None:
        for cid, order in self.orders.items():
            if order.broker_order_id == broker_order_id:
                if order.is_final:
                    raise OrderRejectedError(f"order {broker_order_id} is {order.status}")
                self.orders[cid] = dataclasses.replace(order, status=OrderStatus.CANCELED)

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> BrokerOrder:
        raise NotImplementedError

    def close_position(self, symbol: str, client_order_id: str | None = None) -> BrokerOrder:
        raise NotImplementedError


class ScriptedUpdates:
    """A fake order updates stream: the test sets liveness, gaps and pushed states; every
    ``wait`` is recorded and may run the test's script (``on_wait(n)``, n from 1)."""

    def __init__(self, *, live: bool = True, gap: bool = False) -> None:
        self.is_live = live
        self.gap = gap
        self.orders: dict[str, BrokerOrder] = {}
        self.waits: list[float] = []
        self.on_wait: Callable[[int], object] = lambda _n: None

    @property
    def live(self) -> bool:
        return self.is_live

    def latest(self, client_order_id: str) -> BrokerOrder | None:
        return self.orders.get(client_order_id)

    def wait(self, timeout_s: float) -> None:
        self.waits.append(timeout_s)
        self.on_wait(len(self.waits))
        time.sleep(min(timeout_s, 0.005))

    def take_gap(self) -> bool:
        gap, self.gap = self.gap, False
        return gap

    def push(self, order: BrokerOrder) -> None:
        self.orders[order.client_order_id] = order


def _run_and_order(store: AttemptStore, qty: str = "10") -> tuple[ExecutionRun, PlannedOrder]:
    correlation_id = str(uuid.uuid4())
    order = PlannedOrder(
        leg=0,
        symbol="SPY",
        side=OrderSide.BUY,
        qty=Decimal(qty),
        price=PRICE,
        fractionable=True,
        full_liquidation=False,
        client_order_id="unused",
    )
    run = ExecutionRun(
        account_id=TEST_ACCOUNT,
        correlation_id=correlation_id,
        plan_hash="a" * 64,
        input_event_id=str(uuid.uuid4()),
        status=RunStatus.RUNNING,
        orders=(order,),
        trading_day=datetime.now(UTC).date(),
        reserved_value=order.value,
        started_at=datetime.now(UTC),
    )
    return store.start_run(run), order


def _runner(
    broker: PaperBroker,
    store: AttemptStore,
    updates: OrderUpdates | None,
    *,
    config: ExecutionConfig = FAST_CONFIG,
) -> PhaseRunner:
    desk = OrderDesk(broker, store, broker_name="test")
    return PhaseRunner(broker, desk, config, updates=updates)


def _recorded(store: AttemptStore, run: ExecutionRun) -> list[Attempt]:
    return store.attempts_of(run.account_id, run.correlation_id)


def test_phase_when_stream_live_and_fill_pushed_then_done_without_rest_reads(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True, gap=True)  # a fresh connection: nothing open yet
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    updates.on_wait = lambda n: updates.push(broker.fill(cid)) if n == 2 else None

    results = _runner(broker, store, updates).run(run, [order], {})

    assert results[0].succeeded
    assert broker.lookups == []  # no get_order_by_client_id at all
    (attempt,) = _recorded(store, run)
    assert (attempt.client_order_id, attempt.state, attempt.broker_status) == (
        cid,
        AttemptState.FILLED,
        "filled",
    )
    assert (attempt.filled_qty, attempt.filled_avg_price) == (Decimal(10), PRICE)
    assert attempt.filled_at == broker.orders[cid].filled_at
    assert len(updates.waits) == 3  # placed; nothing yet; filled (then done)
    assert all(0 < wait <= LIVE_WAIT_MAX_S + 0.01 for wait in updates.waits)


def test_phase_when_stream_live_then_wait_ends_at_the_fill_timeout_at_the_latest(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    updates.on_wait = lambda n: updates.push(broker.fill(cid)) if n == 1 else None
    config = dataclasses.replace(FAST_CONFIG, fill_timeout_s=0.3)
    runner = _runner(broker, store, updates, config=config)

    assert runner.run(run, [order], {})[0].succeeded
    assert 0.2 < updates.waits[0] <= 0.31  # the market order's fill timeout, not 1 s


def test_phase_when_gap_while_live_then_exactly_one_rest_refresh(store: AttemptStore) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)

    def script(n: int) -> None:
        if n == 1:  # the stream drops and comes back: what it missed is unknown
            updates.gap = True
        if n == 4:
            updates.push(broker.fill(cid))

    updates.on_wait = script

    results = _runner(broker, store, updates).run(run, [order], {})

    assert results[0].succeeded
    assert broker.lookups == [cid]
    assert _recorded(store, run)[0].state is AttemptState.FILLED


def test_phase_when_fill_missed_during_gap_then_rest_refresh_finds_it(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)

    def script(n: int) -> None:
        if n == 1:  # filled while the stream was down: never pushed
            broker.fill(cid)
            updates.gap = True

    updates.on_wait = script

    results = _runner(broker, store, updates).run(run, [order], {})

    assert results[0].succeeded
    assert broker.lookups == [cid]
    assert _recorded(store, run)[0].state is AttemptState.FILLED


def test_phase_when_resumed_open_attempt_and_stream_live_then_read_over_rest_once(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    desk = OrderDesk(broker, store, broker_name="test")
    placed = desk.place(
        run.account_id,
        run.correlation_id,
        order,
        attempt=0,
        client_order_id=cid,
        qty=order.qty,
        order_type=OrderType.MARKET,
        limit_price=None,
    )
    assert placed.state is AttemptState.SUBMITTED
    broker.fill(cid)  # filled while no process was running: the stream never saw it
    updates = ScriptedUpdates(live=True)

    results = _runner(broker, store, updates).run(run, [order], {0: [placed]})

    assert results[0].succeeded
    assert broker.lookups == [cid]
    assert _recorded(store, run)[0].state is AttemptState.FILLED


def test_phase_when_stream_state_older_than_record_then_ignored(store: AttemptStore) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    seen: list[Decimal] = []

    def script(n: int) -> None:
        if n == 1:  # a partial fill read over REST after a gap; the stream's state predates it
            updates.push(broker.orders[cid])
            broker.orders[cid] = dataclasses.replace(
                broker.orders[cid],
                status=OrderStatus.PARTIALLY_FILLED,
                filled_qty=Decimal(4),
                filled_avg_price=PRICE,
            )
            updates.gap = True
        elif n in (2, 3):
            seen.append(_recorded(store, run)[0].filled_qty)
        elif n == 4:
            updates.push(broker.fill(cid))

    updates.on_wait = script

    assert _runner(broker, store, updates).run(run, [order], {})[0].succeeded
    assert seen == [Decimal(4), Decimal(4)]
    assert broker.lookups == [cid]


def test_phase_when_stream_not_live_then_rest_polling_as_before(store: AttemptStore) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=False, gap=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    updates.on_wait = lambda n: broker.fill(cid) if n == 2 else None  # never pushed

    results = _runner(broker, store, updates).run(run, [order], {})

    assert results[0].succeeded
    assert broker.lookups == [cid, cid]  # one REST read per waiting round
    assert updates.waits == [FAST_CONFIG.poll_interval_s] * 3
    assert updates.gap is True  # not taken while not live
    assert _recorded(store, run)[0].state is AttemptState.FILLED


def test_phase_when_no_updates_given_then_sleeps_the_poll_interval(store: AttemptStore) -> None:
    broker = PaperBroker()
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        broker.fill(cid)

    desk = OrderDesk(broker, store, broker_name="test")
    results = PhaseRunner(broker, desk, FAST_CONFIG, sleep=sleep).run(run, [order], {})

    assert results[0].succeeded
    assert sleeps == [FAST_CONFIG.poll_interval_s] * 2
    assert broker.lookups == [cid]


def test_executor_when_updates_given_then_fills_learned_from_the_stream(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True, gap=True)

    def script(_n: int) -> None:
        for cid, order in list(broker.orders.items()):
            if not order.is_final:
                updates.push(broker.fill(cid))

    updates.on_wait = script
    desk = OrderDesk(broker, store, broker_name="test")
    executor = Executor(broker, store, desk, FAST_CONFIG, sleep=lambda _s: None, updates=updates)
    event = planned([buy("SPY", "5000")])

    report = executor.execute(execution_request(event))

    assert report.result is not None
    assert report.result.success
    assert report.result.orders_succeeded == 1
    assert broker.lookups == []
    (attempt,) = store.attempts_of(event.account_id, str(event.correlation_id))
    assert (attempt.state, attempt.filled_qty) == (AttemptState.FILLED, Decimal(100))


def test_phase_when_update_lost_on_live_stream_then_rest_recheck_finds_the_fill(
    store: AttemptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(phases, "LIVE_RECHECK_S", 0.05)
    broker = PaperBroker()
    updates = ScriptedUpdates(live=True)
    run, order = _run_and_order(store)
    cid = client_order_id_for(run, 0, 0)
    # filled at the broker, but the stream (still connected) never delivers the update
    updates.on_wait = lambda n: broker.fill(cid) if n == 1 else None

    results = _runner(broker, store, updates).run(run, [order], {})

    assert results[0].succeeded
    assert broker.lookups and set(broker.lookups) == {cid}  # the recheck, over REST
    assert _recorded(store, run)[0].state is AttemptState.FILLED


def test_desk_when_fills_learnt_then_counts_filled_once_and_traded_value_by_notional(
    store: AttemptStore,
) -> None:
    broker = PaperBroker()
    metrics = Metrics()
    desk = OrderDesk(broker, store, broker_name="test", metrics=metrics)
    run, order = _run_and_order(store, qty="10")
    placed = desk.place(
        run.account_id,
        run.correlation_id,
        order,
        attempt=1,
        client_order_id="cid-metrics-1",
        qty=order.qty,
        order_type=OrderType.MARKET,
        limit_price=None,
    )
    partial = dataclasses.replace(
        broker.orders["cid-metrics-1"],
        status=OrderStatus.PARTIALLY_FILLED,
        filled_qty=Decimal(4),
        filled_avg_price=Decimal("50.00"),
    )
    after_partial = desk.observe(placed, partial)
    filled = broker.fill("cid-metrics-1", price=Decimal("51.00"))
    after_fill = desk.observe(after_partial, filled)
    desk.observe(after_fill, filled)  # the same fill learnt again (stream and REST) adds nothing

    labels = {"side": "buy", "broker": "test"}
    assert metrics.registry.get_sample_value("orders_submitted_total", labels) == 1
    assert metrics.registry.get_sample_value("orders_filled_total", labels) == 1
    # 4 x 50.00 learnt first, then the whole 10 at an average of 51.00: 510 in all.
    assert metrics.registry.get_sample_value("traded_value_usd_total", labels) == 510.0


# ------------------------------------------------------------------ the phase's time bound


class SlowBroker(PaperBroker):
    """A broker whose submit takes longer than the phase's bound (the test clock jumps past
    it while the call is in flight), then fills, leaves the order open, or fails."""

    def __init__(self, clock: list[datetime], outcome: str) -> None:
        super().__init__()
        self._clock = clock
        self._outcome = outcome
        self.submits: list[str] = []
        self.cancels: list[str] = []
        self.lookups_fail = False

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        self.submits.append(request.client_order_id)
        self._clock[0] += timedelta(seconds=FAST_CONFIG.phase_timeout_s + 1)
        if self._outcome == "unavailable" and len(self.submits) == 1:
            raise BrokerUnavailableError("submit timed out; the broker never got it")
        order = super().submit_order(request)
        return self.fill(request.client_order_id) if self._outcome == "fill" else order

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        if self.lookups_fail:
            raise BrokerUnavailableError("look-up timed out")
        return super().get_order_by_client_id(client_order_id)

    def cancel_order(self, broker_order_id: str) -> None:
        self.cancels.append(broker_order_id)
        super().cancel_order(broker_order_id)


@pytest.fixture
def clock() -> list[datetime]:
    """The attempt store's clock; the test (or its broker) moves ``clock[0]``."""
    return [datetime.now(UTC)]


@pytest.fixture
def clocked_store(tmp_path: Path, clock: list[datetime]) -> Iterator[AttemptStore]:
    """A migrated attempt store on a fresh SQLite file, on the test's clock."""
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'clocked.db'}")
    attempts = AttemptStore(engine, clock=lambda: clock[0])
    attempts.migrate()
    yield attempts
    engine.dispose()


def test_phase_when_order_fills_in_the_round_that_passes_the_bound_then_leg_succeeded(
    clocked_store: AttemptStore, clock: list[datetime]
) -> None:
    broker = SlowBroker(clock, "fill")
    run, order = _run_and_order(clocked_store)

    results = _runner(broker, clocked_store, None).run(run, [order], {})

    assert (results[0].succeeded, results[0].error) == (True, None)
    assert results[0].filled_qty == order.qty
    assert broker.submits == [client_order_id_for(run, 0, 0)]
    assert _recorded(clocked_store, run)[0].state is AttemptState.FILLED


def test_phase_when_order_still_open_at_the_bound_then_failed_with_nothing_cancelled_or_sent(
    clocked_store: AttemptStore, clock: list[datetime]
) -> None:
    broker = SlowBroker(clock, "open")
    run, order = _run_and_order(clocked_store)

    results = _runner(broker, clocked_store, None).run(run, [order], {})

    assert not results[0].succeeded
    assert results[0].error == "not done within the phase's time bound (order new)"
    assert (len(broker.submits), broker.cancels) == (1, [])


def test_phase_when_lookup_at_the_bound_finds_no_order_then_nothing_sent_and_leg_failed(
    clocked_store: AttemptStore, clock: list[datetime]
) -> None:
    broker = SlowBroker(clock, "unavailable")  # UNKNOWN, and the broker holds no such order
    run, order = _run_and_order(clocked_store)
    cid = client_order_id_for(run, 0, 0)

    results = _runner(broker, clocked_store, None).run(run, [order], {})

    assert broker.submits == [cid]  # the look-up found nothing, and nothing was re-sent
    assert broker.lookups == [cid]
    assert broker.orders == {}
    assert not results[0].succeeded
    assert results[0].error == (
        f"not done within the phase's time bound (order {cid} not placed: no order at the "
        "broker under this client_order_id; not sent)"
    )
    (attempt,) = _recorded(clocked_store, run)
    assert attempt.state is AttemptState.NOT_PLACED


def test_phase_when_outcome_still_unknown_at_the_bound_then_raises_for_redelivery(
    clocked_store: AttemptStore, clock: list[datetime]
) -> None:
    broker = SlowBroker(clock, "unavailable")
    broker.lookups_fail = True
    run, order = _run_and_order(clocked_store)

    with pytest.raises(OrderOutcomeUnknownError):
        _runner(broker, clocked_store, None).run(run, [order], {})

    assert len(broker.submits) == 1
    assert _recorded(clocked_store, run)[0].state is AttemptState.UNKNOWN
