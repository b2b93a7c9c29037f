"""The ledger's handlers over a real SQLite ledger: booking, attribution, snapshots, P&L, the
notification outbox, and redelivery (a handler's unit of work run twice changes nothing).

Figures are computed by hand in the docstrings: two strategy files, ``a`` (half the account,
all in XLK) and ``b`` (the other half, XLK and XLU equally); the consolidated target is XLK
75 %, XLU 25 %.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from alchemiser_broker.models import AccountState, BrokerOrder, BrokerPosition
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.events import (
    EventSource,
    SignalGenerated,
    TradeExecuted,
    WorkflowCompleted,
    WorkflowFailed,
)
from alchemiser_common.events.enums import (
    AllocationStatus,
    FailureStep,
    OrderSide,
    OrderStatus,
    OrderType,
)
from alchemiser_common.events.payloads import (
    OrderResult,
    StrategyAllocation,
    StrategySignal,
    TargetWeight,
    WorkflowSummary,
)
from alchemiser_common.runtime.handlers import HandlerContext, HandlerResult, NotReadyError
from alchemiser_ledger.adapters.schema import metadata, notification_table
from alchemiser_ledger.adapters.store import LedgerStore
from alchemiser_ledger.domain import UNATTRIBUTED
from alchemiser_ledger.handlers import OutcomeHandler, SettledHandler, SignalHandler
from alchemiser_ledger.statements import account_pnl, pnl_json

ACCOUNT = "PA0000000001"
SOURCE = EventSource(service="test", version="0")
T0 = datetime(2024, 3, 1, 20, 45, tzinfo=UTC)
D1 = date(2024, 3, 1)
D2 = date(2024, 3, 4)


class FakeBroker:
    """The account as the broker reports it (set by the test between workflows)."""

    def __init__(self) -> None:
        self.equity = Decimal("1000")
        self.cash = Decimal("1000")
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}
        self.commissions: dict[str, Decimal] = {}

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return BrokerOrder(
            broker_order_id=f"b-{client_order_id}",
            client_order_id=client_order_id,
            symbol="XLK",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            status=OrderStatus.FILLED,
            commission=self.commissions.get(client_order_id),
        )

    def get_account(self) -> AccountState:
        return AccountState(
            account_id="id",
            cash=self.cash,
            buying_power=self.cash,
            equity=self.equity,
            account_number=ACCOUNT,
        )

    def get_positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(symbol, qty, price, qty * price, price)
            for symbol, (qty, price) in self.positions.items()
        ]


@pytest.fixture
def store(ledger_engine: Engine) -> LedgerStore:
    """The ledger's tables, migrated, on SQLite or PostgreSQL (``conftest.py``)."""
    ledger = LedgerStore(ledger_engine)
    ledger.migrate()
    ledger.migrate()  # idempotent
    return ledger


def _context(now: datetime) -> HandlerContext:
    return HandlerContext(consumer="ledger", now=lambda: now)


def _run(store: LedgerStore, result: HandlerResult, times: int = 1) -> None:
    assert result.state is not None
    for _ in range(times):
        with store.engine.begin() as connection:
            result.state(connection)


def _signal(correlation_id: UUID, session: date, at: datetime) -> SignalGenerated:
    return SignalGenerated(
        event_id=uuid4(),
        correlation_id=correlation_id,
        causation_id=uuid4(),
        occurred_at=at,
        source=SOURCE,
        account_id=ACCOUNT,
        signal_hash="0" * 64,
        market_snapshot_id="bars:test",
        as_of=session,
        signals=[
            StrategySignal(strategy="a", symbol="XLK", target_weight=Decimal(1), reason="r"),
            StrategySignal(strategy="b", symbol="XLK", target_weight=Decimal("0.5"), reason="r"),
            StrategySignal(strategy="b", symbol="XLU", target_weight=Decimal("0.5"), reason="r"),
        ],
        strategy_allocations=[
            StrategyAllocation(
                strategy="a", allocation_weight=Decimal("0.5"), status=AllocationStatus.OK
            ),
            StrategyAllocation(
                strategy="b", allocation_weight=Decimal("0.5"), status=AllocationStatus.OK
            ),
        ],
        consolidated_portfolio=[
            TargetWeight(symbol="XLK", weight=Decimal("0.75")),
            TargetWeight(symbol="XLU", weight=Decimal("0.25")),
        ],
    )


def _order(leg: int, symbol: str, side: OrderSide, qty: str, price: str) -> OrderResult:
    return OrderResult(
        leg=leg,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.MARKET,
        client_order_id=f"alc-{symbol}-{side.value}-{leg}-{price}",
        broker_order_id=f"b-{leg}-{price}",
        status=OrderStatus.FILLED,
        filled_qty=Decimal(qty),
        filled_avg_price=Decimal(price),
        submitted_at=T0,
        filled_at=T0,
    )


def _settled(correlation_id: UUID, at: datetime, *orders: OrderResult) -> TradeExecuted:
    return TradeExecuted(
        event_id=uuid4(),
        correlation_id=correlation_id,
        causation_id=uuid4(),
        occurred_at=at,
        source=SOURCE,
        account_id=ACCOUNT,
        execution_plan_hash="1" * 64,
        orders=list(orders),
        orders_placed=len(orders),
        orders_succeeded=len(orders),
        total_trade_value=sum(
            (o.filled_qty * (o.filled_avg_price or 0) for o in orders), Decimal(0)
        ),
        success=True,
    )


def _completed(correlation_id: UUID, at: datetime, orders: int) -> WorkflowCompleted:
    return WorkflowCompleted(
        event_id=uuid4(),
        correlation_id=correlation_id,
        causation_id=uuid4(),
        occurred_at=at,
        source=SOURCE,
        account_id=ACCOUNT,
        duration_ms=10,
        summary=WorkflowSummary(
            orders_placed=orders,
            orders_succeeded=orders,
            total_trade_value=Decimal(0),
            symbols_bought=[],
            symbols_sold=[],
        ),
    )


def _handlers(
    store: LedgerStore, broker: FakeBroker, channels: tuple[str, ...] = ("email",)
) -> tuple[SignalHandler, SettledHandler, OutcomeHandler]:
    return (
        SignalHandler(broker),  # type: ignore[arg-type]
        SettledHandler(store, broker, signal_wait_s=60),  # type: ignore[arg-type]
        OutcomeHandler(
            store,
            broker,  # type: ignore[arg-type]
            channels=channels,
            signal_wait_s=60,
            settled_wait_s=30,
        ),
    )


def _two_sessions(store: LedgerStore, broker: FakeBroker, times: int = 1) -> None:
    """Session 1: buy 30 XLK at 10 (a 20, b 10 by target share) and 10 XLU at 25 (b);
    cash 1000 - 300 - 250 = 450, equity 1000. Session 2: sell 15 XLK at 12 (by holdings:
    a 10, b 5; realised a 10 x 2 = 20, b 5 x 2 = 10); XLK closes at 12, XLU at 26:
    cash 630, equity 630 + 15 x 12 + 10 x 26 = 1070."""
    signal, settled, outcome = _handlers(store, broker)
    w1, w2 = uuid4(), uuid4()
    now = T0 + timedelta(seconds=5)
    _run(store, signal(_signal(w1, D1, T0), _context(now)), times)
    _run(
        store,
        settled(
            _settled(
                w1,
                T0,
                _order(0, "XLK", OrderSide.BUY, "30", "10"),
                _order(1, "XLU", OrderSide.BUY, "10", "25"),
            ),
            _context(now),
        ),
        times,
    )
    broker.cash, broker.equity = Decimal(450), Decimal(1000)
    broker.positions = {"XLK": (Decimal(30), Decimal(10)), "XLU": (Decimal(10), Decimal(25))}
    _run(store, outcome(_completed(w1, T0, 2), _context(now)), times)
    t1 = T0 + timedelta(days=3)
    later = t1 + timedelta(seconds=5)
    _run(store, signal(_signal(w2, D2, t1), _context(later)), times)
    _run(
        store,
        settled(_settled(w2, t1, _order(0, "XLK", OrderSide.SELL, "15", "12")), _context(later)),
        times,
    )
    broker.cash, broker.equity = Decimal(630), Decimal(1070)
    broker.positions = {"XLK": (Decimal(15), Decimal(12)), "XLU": (Decimal(10), Decimal(26))}
    _run(store, outcome(_completed(w2, t1, 1), _context(later)), times)


def test_migrations_when_applied_then_match_the_tables(store: LedgerStore) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert [d for d in diff if "alembic_version" not in str(d)] == []


def test_fills_when_booked_then_split_by_target_then_by_holdings(store: LedgerStore) -> None:
    _two_sessions(store, FakeBroker())

    trades = store.trades(ACCOUNT)

    assert [(t.symbol, t.side, t.qty, t.session) for t in trades] == [
        ("XLK", "buy", Decimal(30), D1),
        ("XLU", "buy", Decimal(10), D1),
        ("XLK", "sell", Decimal(15), D2),
    ]
    assert trades[0].parts == {"a": (Decimal(20), Decimal(0)), "b": (Decimal(10), Decimal(0))}
    assert trades[1].parts == {"b": (Decimal(10), Decimal(0))}
    assert trades[2].parts == {
        "a": (Decimal(10), Decimal("20.00")),
        "b": (Decimal(5), Decimal("10.00")),
    }


def test_pnl_when_two_sessions_then_hand_computed_figures(store: LedgerStore) -> None:
    """Day 2: account +70; a = 20 realised + 10 x (12 - 10) unrealised = 40; b = 10
    realised + 5 x 2 + 10 x 1 unrealised = 30; they sum to the account's 70."""
    _two_sessions(store, FakeBroker())

    statement = account_pnl(store, ACCOUNT)
    document = pnl_json(statement)

    assert statement.inception_equity == Decimal(1000)
    first, second = document["days"]
    assert first["account"] == {"day": "0", "month_to_date": "0", "since_inception": "0"}
    assert second["equity"] == "1070"
    assert second["account"] == {"day": "70", "month_to_date": "70", "since_inception": "70"}
    assert Decimal(second["strategies"]["a"]["day"]) == Decimal(40)
    assert Decimal(second["strategies"]["a"]["realised"]) == Decimal(20)
    assert Decimal(second["strategies"]["a"]["unrealised"]) == Decimal(20)
    assert Decimal(second["strategies"]["b"]["day"]) == Decimal(30)
    assert Decimal(second["strategies"]["b"]["unrealised"]) == Decimal(20)
    assert document["breaks"] == {}
    only_second = account_pnl(store, ACCOUNT, start=D2)
    assert [day.session for day in only_second.days] == [D2]


def test_every_unit_when_run_twice_then_the_ledger_is_the_same(tmp_path: Path) -> None:
    once = LedgerStore(create_engine_from_url(f"sqlite:///{tmp_path / 'once.db'}"))
    twice = LedgerStore(create_engine_from_url(f"sqlite:///{tmp_path / 'twice.db'}"))
    for store in (once, twice):
        store.migrate()
    _two_sessions(once, FakeBroker())
    _two_sessions(twice, FakeBroker(), times=2)

    assert pnl_json(account_pnl(twice, ACCOUNT)) == pnl_json(account_pnl(once, ACCOUNT))
    assert len(twice.trades(ACCOUNT)) == 3
    with twice.engine.connect() as connection:
        rows = connection.execute(sa.select(notification_table)).mappings().all()
    assert len(rows) == 2  # one notification per workflow, however often it is recorded
    assert {row["status"] for row in rows} == {"pending"}
    assert {row["channel"] for row in rows} == {"email"}


def test_settled_when_signal_missing_then_waits_and_later_books_unattributed(
    store: LedgerStore,
) -> None:
    _, settled, _ = _handlers(store, FakeBroker())
    workflow = uuid4()
    event = _settled(workflow, T0, _order(0, "XLK", OrderSide.BUY, "3", "10"))

    with pytest.raises(NotReadyError):
        settled(event, _context(T0 + timedelta(seconds=59)))
    _run(store, settled(event, _context(T0 + timedelta(seconds=61))))

    (trade,) = store.trades(ACCOUNT)
    assert trade.parts == {UNATTRIBUTED: (Decimal(3), Decimal(0))}


def test_completed_when_orders_not_booked_yet_then_waits_for_them(store: LedgerStore) -> None:
    broker = FakeBroker()
    signal, _, outcome = _handlers(store, broker)
    workflow = uuid4()
    _run(store, signal(_signal(workflow, D1, T0), _context(T0)))

    with pytest.raises(NotReadyError):
        outcome(_completed(workflow, T0, 2), _context(T0 + timedelta(seconds=29)))
    _run(store, outcome(_completed(workflow, T0, 2), _context(T0 + timedelta(seconds=31))))

    assert [s.session for s in store.snapshots(ACCOUNT)] == [D1]


def test_failed_workflow_when_recorded_then_outcome_and_notification_name_the_step(
    store: LedgerStore,
) -> None:
    broker = FakeBroker()
    signal, _, outcome = _handlers(store, broker, channels=("email", "webhook"))
    workflow = uuid4()
    _run(store, signal(_signal(workflow, D1, T0), _context(T0)))
    failed = WorkflowFailed(
        event_id=uuid4(),
        correlation_id=workflow,
        causation_id=uuid4(),
        occurred_at=T0,
        source=SOURCE,
        account_id=ACCOUNT,
        failure_step=FailureStep.PORTFOLIO,
        reason="price missing for XLU",
    )

    _run(store, outcome(failed, _context(T0)))

    row = store.workflow(ACCOUNT, str(workflow))
    assert row is not None
    assert (row.outcome, row.failure_step, row.reason) == (
        "failed",
        "portfolio",
        "price missing for XLU",
    )
    with store.engine.connect() as connection:
        notes = connection.execute(sa.select(notification_table)).mappings().all()
    assert sorted(n["channel"] for n in notes) == ["email", "webhook"]
    assert all("portfolio" in n["subject"] or "portfolio" in n["body_text"] for n in notes)
    assert all("price missing for XLU" in n["body_text"] for n in notes)


def test_no_channel_when_configured_then_nothing_is_queued(store: LedgerStore) -> None:
    broker = FakeBroker()
    signal, _, outcome = _handlers(store, broker, channels=())
    workflow = uuid4()
    _run(store, signal(_signal(workflow, D1, T0), _context(T0)))
    _run(store, outcome(_completed(workflow, T0, 0), _context(T0)))

    with store.engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(notification_table)
            ).scalar_one()
            == 0
        )
    assert [s.equity for s in store.snapshots(ACCOUNT)] == [Decimal(1000)]


def test_fill_when_broker_reports_a_commission_then_booked_as_fees_split_by_quantity(
    store: LedgerStore,
) -> None:
    """30 XLK bought for a 1.50 commission: a (20) pays 1.00, b (10) pays 0.50, each booked
    as negative realised P&L on the day it is paid; an order without one pays nothing."""
    broker = FakeBroker()
    signal, settled, _ = _handlers(store, broker)
    workflow = uuid4()
    buy = _order(0, "XLK", OrderSide.BUY, "30", "10")
    broker.commissions[buy.client_order_id] = Decimal("1.50")
    _run(store, signal(_signal(workflow, D1, T0), _context(T0)))

    _run(
        store,
        settled(
            _settled(workflow, T0, buy, _order(1, "XLU", OrderSide.BUY, "10", "25")),
            _context(T0),
        ),
    )

    xlk, xlu = store.trades(ACCOUNT)
    assert xlk.fees == Decimal("1.50")
    assert xlk.parts == {
        "a": (Decimal(20), Decimal("-1.00")),
        "b": (Decimal(10), Decimal("-0.50")),
    }
    assert xlu.fees == Decimal(0)
    assert xlu.parts == {"b": (Decimal(10), Decimal(0))}
