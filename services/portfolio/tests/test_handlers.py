"""The SignalGenerated handler against an in-test broker: plans, failures and rejections; and
one workflow at a time per account (the workflow ledger on SQLite, the outcome handlers)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from alchemiser_broker import (
    ACCOUNT_MISMATCH,
    AccountState,
    AssetInfo,
    BrokerAuthError,
    BrokerOrder,
    BrokerPort,
    BrokerPosition,
    BrokerUnavailableError,
    MarketClock,
    OrderRequest,
    Quote,
)
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import TransientError
from alchemiser_common.events import (
    Event,
    EventSource,
    RebalancePlanned,
    SignalGenerated,
    TargetWeight,
    WorkflowCompleted,
    WorkflowFailed,
    derive_event_id,
    plan_hash,
)
from alchemiser_common.events.enums import FailureStep, PlanAction
from alchemiser_common.events.samples import (
    SAMPLE_ACCOUNT_ID,
    sample_signal_generated,
    sample_workflow_completed,
    sample_workflow_failed,
)
from alchemiser_common.runtime.handlers import (
    HandlerContext,
    HandlerResult,
    InvalidEventError,
    NotReadyError,
)
from alchemiser_portfolio.adapters.ledger import WorkflowLedger
from alchemiser_portfolio.adapters.schema import finished_table
from alchemiser_portfolio.domain import AccountWorkflows, PlannerConfig, PlanRef, WorkflowEnd
from alchemiser_portfolio.handlers import SignalGeneratedHandler, WorkflowEndedHandler
from alchemiser_portfolio.sequencing import PreviousWorkflowGate

NOW = datetime(2025, 3, 14, 19, 45, 6, tzinfo=UTC)
SOURCE = EventSource(service="portfolio", version="test")


class FakeBroker:
    """A :class:`BrokerPort` holding an account in memory; order methods are not used here.

    ``account_number`` is the sample events' account unless given. Every call is noted in
    ``log`` (its method name), the sessions set in ``sessions``; ``error`` fails every call,
    ``session_error`` only ``use_session``.
    """

    def __init__(
        self,
        cash: str,
        positions: dict[str, tuple[str, str]] | None = None,
        prices: dict[str, str] | None = None,
        *,
        error: Exception | None = None,
        account_number: str = SAMPLE_ACCOUNT_ID,
    ) -> None:
        self.cash = Decimal(cash)
        self.positions = {
            symbol: (Decimal(qty), Decimal(price))
            for symbol, (qty, price) in (positions or {}).items()
        }
        self.prices = {symbol: Decimal(price) for symbol, price in (prices or {}).items()}
        self.error = error
        self.account_number = account_number
        self.price_requests: list[list[str]] = []
        self.sessions: list[date] = []
        self.session_error: Exception | None = None
        self.log: list[str] = []
        self.calls = 0

    def _raise_if_failing(self, method: str) -> None:
        self.calls += 1
        self.log.append(method)
        if self.error is not None:
            raise self.error

    def use_session(self, session: date) -> None:
        self._raise_if_failing("use_session")
        if self.session_error is not None:
            raise self.session_error
        self.sessions.append(session)

    def get_account(self) -> AccountState:
        self._raise_if_failing("get_account")
        return AccountState(
            account_id="fake",
            cash=self.cash,
            buying_power=self.cash,
            equity=self.cash,
            account_number=self.account_number,
        )

    def get_positions(self) -> list[BrokerPosition]:
        self._raise_if_failing("get_positions")
        return [
            BrokerPosition(
                symbol=symbol,
                qty=qty,
                avg_entry_price=price,
                market_value=qty * price,
                current_price=price,
            )
            for symbol, (qty, price) in sorted(self.positions.items())
        ]

    def get_position(self, symbol: str) -> BrokerPosition | None:
        return next((p for p in self.get_positions() if p.symbol == symbol), None)

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        self._raise_if_failing("get_latest_prices")
        wanted = list(symbols)
        self.price_requests.append(wanted)
        return {symbol: self.prices[symbol] for symbol in wanted if symbol in self.prices}

    def get_quote(self, symbol: str) -> Quote | None:
        raise NotImplementedError

    def get_clock(self) -> MarketClock:
        raise NotImplementedError

    def get_asset(self, symbol: str) -> AssetInfo:
        raise NotImplementedError

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        raise NotImplementedError

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        raise NotImplementedError

    def cancel_order(self, broker_order_id: str) -> None:
        raise NotImplementedError

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


class NoEarlierPlans:
    """A ledger reader for an account with no earlier plan (the planning tests' account)."""

    def account_workflows(
        self, account_id: str, *, excluding: str, asking: Collection[str] = ()
    ) -> AccountWorkflows:
        return AccountWorkflows()


class EveryPlanFinished:
    """A ledger reader for an account whose earlier workflows all finished (asked-about too)."""

    def account_workflows(
        self, account_id: str, *, excluding: str, asking: Collection[str] = ()
    ) -> AccountWorkflows:
        return AccountWorkflows(finished=frozenset(asking))


WAIT = timedelta(seconds=900)


def _context() -> HandlerContext:
    # The handler persists nothing itself, so it never touches the connection.
    return HandlerContext(consumer="portfolio", now=lambda: NOW)


def _signal(weights: dict[str, str]) -> SignalGenerated:
    portfolio = [TargetWeight(symbol=s, weight=Decimal(w)) for s, w in weights.items()]
    return sample_signal_generated().model_copy(update={"consolidated_portfolio": portfolio})


def _handle(broker: FakeBroker, event: SignalGenerated) -> Sequence[Event]:
    assert isinstance(broker, BrokerPort)
    gate = PreviousWorkflowGate(NoEarlierPlans(), WAIT)
    return SignalGeneratedHandler(broker, PlannerConfig(), SOURCE, gate)(event, _context()).events


def _only(outputs: Sequence[Event], kind: type[Event]) -> Any:
    assert len(outputs) == 1
    assert isinstance(outputs[0], kind)
    return outputs[0]


def _worked_example_broker(account_number: str = SAMPLE_ACCOUNT_ID) -> FakeBroker:
    # value = 1000 + 10 x 50 + 5 x 100 + 2 x 108 = 2216; deployable = 2216 x 0.99 = 2193.84
    return FakeBroker(
        "1000.00",
        {"SOXL": ("10", "50.00"), "TQQQ": ("5", "100.00"), "BIL": ("2", "108.00")},
        {"SMR": "20.00", "SOXL": "49.00"},
        account_number=account_number,
    )


def test_handle_when_signal_and_account_then_exact_plan_in_execution_order() -> None:
    broker = _worked_example_broker()
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})

    planned = _only(_handle(broker, signal), RebalancePlanned)

    rows = [
        (i.symbol, i.action, i.current_value, i.target_value, i.trade_amount, i.priority)
        for i in planned.plan.items
    ]
    assert rows == [
        ("SOXL", PlanAction.SELL, Decimal("500"), Decimal("0"), Decimal("-500"), 3),
        ("SMR", PlanAction.BUY, Decimal("0"), Decimal("1096.92"), Decimal("1096.92"), 2),
        ("TQQQ", PlanAction.BUY, Decimal("500"), Decimal("877.54"), Decimal("377.54"), 3),
        ("BIL", PlanAction.HOLD, Decimal("216"), Decimal("219.38"), Decimal("3.38"), 5),
    ]
    weights = {
        i.symbol: (i.current_weight, i.target_weight, i.weight_diff) for i in planned.plan.items
    }
    assert weights == {
        "SOXL": (Decimal("0.225631768953"), Decimal("0"), Decimal("-0.225631768953")),
        "SMR": (Decimal("0"), Decimal("0.495"), Decimal("0.495")),
        "TQQQ": (Decimal("0.225631768953"), Decimal("0.396"), Decimal("0.170368231047")),
        "BIL": (Decimal("0.097472924188"), Decimal("0.099"), Decimal("0.001527075812")),
    }
    assert planned.plan.total_portfolio_value == Decimal("2216.00")
    assert planned.plan.total_trade_value == Decimal("1974.46")
    assert planned.plan.cash_reserve_pct == Decimal("0.01")
    # only the unheld target is priced separately; held positions use their own price
    assert broker.price_requests == [["SMR"]]


def test_handle_when_signal_then_envelope_ids_and_hash_derive_from_the_signal() -> None:
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})

    planned = _only(_handle(_worked_example_broker(), signal), RebalancePlanned)

    assert planned.event_id == derive_event_id(signal.event_id, "RebalancePlanned")
    assert planned.causation_id == signal.event_id
    assert planned.correlation_id == signal.correlation_id
    assert planned.account_id == signal.account_id
    assert planned.source == SOURCE
    assert planned.occurred_at == NOW
    assert planned.plan.plan_id == f"plan-{signal.correlation_id}"
    assert planned.plan_hash == plan_hash(planned.plan, signal.correlation_id)
    assert len(planned.account_snapshot_id) == 64


def test_handle_when_signal_then_allocation_comparison_uses_strategy_weights() -> None:
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})

    planned = _only(_handle(_worked_example_broker(), signal), RebalancePlanned)

    comparison = {
        row.symbol: (row.target_weight, row.current_weight, row.weight_diff)
        for row in planned.allocation_comparison
    }
    assert comparison == {
        "BIL": (Decimal("0.1"), Decimal("0.097472924188"), Decimal("0.002527075812")),
        "SMR": (Decimal("0.5"), Decimal("0"), Decimal("0.5")),
        "SOXL": (Decimal("0"), Decimal("0.225631768953"), Decimal("-0.225631768953")),
        "TQQQ": (Decimal("0.4"), Decimal("0.225631768953"), Decimal("0.174368231047")),
    }


def test_handle_when_handled_twice_then_same_event_and_hash() -> None:
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})

    first = _handle(_worked_example_broker(), signal)
    second = _handle(_worked_example_broker(), signal)

    assert first == second


def test_handle_when_account_changes_then_snapshot_id_and_hash_change() -> None:
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})
    richer = _worked_example_broker()
    richer.cash = Decimal("1000.01")

    before = _only(_handle(_worked_example_broker(), signal), RebalancePlanned)
    after = _only(_handle(richer, signal), RebalancePlanned)

    assert before.account_snapshot_id != after.account_snapshot_id
    assert before.plan_hash != after.plan_hash


def test_handle_when_target_has_no_price_then_workflow_failed_naming_it() -> None:
    broker = FakeBroker("1000.00", {"TQQQ": ("1", "100.00")}, {"SMR": "20.00"})
    signal = _signal({"TQQQ": "0.3", "OKLO": "0.3", "SMR": "0.2", "LEU": "0.2"})

    failed = _only(_handle(broker, signal), WorkflowFailed)

    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.failed_symbols == ["LEU", "OKLO"]
    assert "LEU" in failed.reason and "OKLO" in failed.reason
    assert failed.details["missing_prices"] == "LEU,OKLO"
    assert failed.details["signal_event_id"] == str(signal.event_id)
    assert failed.causation_id == signal.event_id
    assert failed.event_id == derive_event_id(signal.event_id, "WorkflowFailed")


def test_handle_when_held_position_has_no_price_then_workflow_failed() -> None:
    # The broker reports SOXL at price 0 and has no latest price for it either.
    broker = FakeBroker("1000.00", {"SOXL": ("10", "0")}, {"TQQQ": "100.00"})

    failed = _only(_handle(broker, _signal({"TQQQ": "1"})), WorkflowFailed)

    assert failed.failed_symbols == ["SOXL"]
    assert broker.price_requests == [["SOXL", "TQQQ"]]


def test_handle_when_position_has_no_price_but_latest_price_exists_then_plans_with_it() -> None:
    broker = FakeBroker("0", {"SOXL": ("10", "0")}, {"SOXL": "40.00"})

    planned = _only(_handle(broker, _signal({})), RebalancePlanned)

    (item,) = planned.plan.items
    assert (item.symbol, item.action, item.trade_amount) == ("SOXL", PlanAction.SELL, -400)


@pytest.mark.parametrize("weights", [{"TQQQ": "0.5"}, {"TQQQ": "0.6", "SMR": "0.42"}, {"X": "0"}])
def test_handle_when_weights_sum_out_of_range_then_invalid_event_and_no_broker_call(
    weights: dict[str, str],
) -> None:
    broker = _worked_example_broker()

    with pytest.raises(InvalidEventError, match="sum to"):
        _handle(broker, _signal(weights))

    assert broker.calls == 0


def test_handle_when_weights_sum_within_tolerance_then_plans() -> None:
    planned = _only(
        _handle(_worked_example_broker(), _signal({"TQQQ": "0.5", "SMR": "0.5095"})),
        RebalancePlanned,
    )

    targets = {item.symbol: item.target_weight for item in planned.plan.items}
    assert targets["SMR"] == Decimal("0.504405")  # 0.5095 x (1 - 0.01 reserve)
    assert targets["TQQQ"] == Decimal("0.495")


def test_handle_when_portfolio_empty_then_sells_every_position() -> None:
    broker = _worked_example_broker()

    planned = _only(_handle(broker, _signal({})), RebalancePlanned)

    sells = {item.symbol: item.trade_amount for item in planned.plan.items}
    assert sells == {"SOXL": Decimal("-500"), "TQQQ": Decimal("-500"), "BIL": Decimal("-216")}
    assert all(item.action is PlanAction.SELL for item in planned.plan.items)
    assert all(item.target_value == 0 for item in planned.plan.items)
    assert planned.plan.total_trade_value == Decimal("1216.00")
    assert broker.price_requests == []


def test_handle_when_broker_unavailable_then_transient_error_propagates() -> None:
    broker = FakeBroker("1000.00", error=BrokerUnavailableError("503 from the broker"))

    with pytest.raises(BrokerUnavailableError):
        _handle(broker, _signal({"TQQQ": "1"}))


def test_handle_when_broker_refuses_credentials_then_workflow_failed() -> None:
    broker = FakeBroker("1000.00", error=BrokerAuthError("401 unauthorized"))

    failed = _only(_handle(broker, _signal({"TQQQ": "1"})), WorkflowFailed)

    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.reason == "account unreadable: 401 unauthorized"
    assert failed.details["error_type"] == "BrokerAuthError"
    assert failed.failed_symbols == []


def test_handle_when_signal_for_another_account_then_account_mismatch_and_nothing_read() -> None:
    broker = _worked_example_broker("PA0THERACCT1")
    signal = _signal({"TQQQ": "1"})

    failed = _only(_handle(broker, signal), WorkflowFailed)

    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.reason == ACCOUNT_MISMATCH == "account_mismatch"
    assert failed.details["event_account_id"] == signal.account_id == SAMPLE_ACCOUNT_ID
    assert failed.details["broker_account_number"] == "PA0THERACCT1"
    assert failed.details["signal_event_id"] == str(signal.event_id)
    assert failed.failed_symbols == []
    assert failed.account_id == signal.account_id
    assert failed.event_id == derive_event_id(signal.event_id, "WorkflowFailed")
    # only the account number was read: no session moved, no positions, no prices
    assert broker.log == ["get_account"]
    assert broker.sessions == []
    assert broker.price_requests == []


def test_handle_when_signal_for_the_brokers_account_then_session_set_before_account_read() -> None:
    broker = _worked_example_broker()
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})
    assert signal.account_id == broker.account_number

    _only(_handle(broker, signal), RebalancePlanned)

    assert broker.sessions == [signal.as_of]
    # the number, then the session, then the snapshot read in that session
    assert broker.log == [
        "get_account",
        "use_session",
        "get_account",
        "get_positions",
        "get_latest_prices",
    ]


def test_handle_when_several_signals_then_account_number_read_once_per_handler() -> None:
    broker = _worked_example_broker()
    handler = SignalGeneratedHandler(
        broker, PlannerConfig(), SOURCE, PreviousWorkflowGate(EveryPlanFinished(), WAIT)
    )
    first = _signal({"TQQQ": "1"})
    second = first.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "correlation_id": uuid.uuid4(),
            "as_of": date(2025, 3, 17),
        }
    )
    other = first.model_copy(
        update={"event_id": uuid.uuid4(), "correlation_id": uuid.uuid4(), "account_id": "OTHER-1"}
    )

    _only(handler(first, _context()).events, RebalancePlanned)
    broker.log.clear()
    _only(handler(second, _context()).events, RebalancePlanned)
    after_second = list(broker.log)
    broker.log.clear()
    failed = _only(handler(other, _context()).events, WorkflowFailed)

    assert after_second[0] == "use_session"  # no second read of the number
    assert after_second.count("get_account") == 1  # the snapshot's own read
    assert broker.sessions == [first.as_of, date(2025, 3, 17)]
    assert failed.reason == ACCOUNT_MISMATCH
    assert failed.details["broker_account_number"] == SAMPLE_ACCOUNT_ID
    assert broker.log == []  # a mismatch against the known number reads nothing


def test_handle_when_account_number_read_fails_transiently_then_propagates_and_read_again() -> None:
    broker = _worked_example_broker()
    broker.error = BrokerUnavailableError("connection reset")
    handler = SignalGeneratedHandler(
        broker, PlannerConfig(), SOURCE, PreviousWorkflowGate(NoEarlierPlans(), WAIT)
    )
    signal = _signal({"TQQQ": "1"})

    with pytest.raises(TransientError):
        handler(signal, _context())

    assert broker.log == ["get_account"]
    assert broker.sessions == []
    # the runtime retries: the number is read again (nothing was remembered) and the plan made
    broker.error = None
    broker.log.clear()
    _only(handler(signal, _context()).events, RebalancePlanned)
    assert broker.log[:2] == ["get_account", "use_session"]


@pytest.mark.parametrize(
    ("error", "transient"),
    [(BrokerUnavailableError("503 from the exchange"), True), (BrokerAuthError("403"), False)],
)
def test_handle_when_session_cannot_be_set_then_transient_propagates_else_workflow_failed(
    error: Exception, transient: bool
) -> None:
    broker = _worked_example_broker()
    broker.session_error = error

    if transient:
        with pytest.raises(TransientError):
            _handle(broker, _signal({"TQQQ": "1"}))
    else:
        failed = _only(_handle(broker, _signal({"TQQQ": "1"})), WorkflowFailed)
        assert failed.reason.startswith("session ") and failed.reason.endswith(" not set: 403")
        assert failed.details["error_type"] == "BrokerAuthError"

    assert broker.log == ["get_account", "use_session"]  # no snapshot from another session


def test_handle_when_short_position_then_workflow_failed() -> None:
    broker = FakeBroker("1000.00", {"SQQQ": ("-3", "10.00")}, {"TQQQ": "100.00"})

    failed = _only(_handle(broker, _signal({"TQQQ": "1"})), WorkflowFailed)

    assert "short position SQQQ" in failed.reason
    assert failed.details["error_type"] == "InvalidAccountError"


def test_handle_when_broker_symbol_outside_event_pattern_then_workflow_failed() -> None:
    broker = FakeBroker("1000.00", {"brk b": ("1", "400.00")}, {"TQQQ": "100.00"})

    failed = _only(_handle(broker, _signal({"TQQQ": "1"})), WorkflowFailed)

    assert failed.reason.startswith("the plan cannot be expressed as an event")


# -- one workflow at a time per account ---------------------------------------------------------


class Clock:
    """A settable clock for the handler context."""

    def __init__(self) -> None:
        self.now = NOW

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def context(self) -> HandlerContext:
        return HandlerContext(consumer="portfolio", now=lambda: self.now)


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[WorkflowLedger]:
    engine = create_engine_from_url(sqlite_url)
    ledger = WorkflowLedger(engine)
    ledger.migrate()
    try:
        yield ledger
    finally:
        engine.dispose()


def _planner(ledger: WorkflowLedger, broker: FakeBroker | None = None) -> SignalGeneratedHandler:
    gate = PreviousWorkflowGate(ledger, WAIT)
    return SignalGeneratedHandler(broker or _worked_example_broker(), PlannerConfig(), SOURCE, gate)


def _workflow(account_id: str | None = None) -> SignalGenerated:
    """A signal of a new workflow (of the sample account unless ``account_id``)."""
    signal = _signal({"TQQQ": "0.4", "SMR": "0.5", "BIL": "0.1"})
    update: dict[str, Any] = {"event_id": uuid.uuid4(), "correlation_id": uuid.uuid4()}
    if account_id is not None:
        update["account_id"] = account_id
    return signal.model_copy(update=update)


def _commit(ledger: WorkflowLedger, result: HandlerResult) -> None:
    """What the runtime does with the result's unit of work: run it in the inbox transaction."""
    assert result.state is not None
    with ledger.engine.begin() as connection:
        result.state(connection)


def _finish(ledger: WorkflowLedger, signal: SignalGenerated, outcome: WorkflowEnd) -> None:
    ended: WorkflowCompleted | WorkflowFailed
    if outcome is WorkflowEnd.COMPLETED:
        ended = sample_workflow_completed(signal)
    else:
        ended = sample_workflow_failed(signal)
    result = WorkflowEndedHandler(outcome)(ended, Clock().context())
    assert result.events == ()
    _commit(ledger, result)


def test_sequencing_when_no_earlier_plan_then_plans_and_records_the_plan(
    ledger: WorkflowLedger,
) -> None:
    signal = _workflow()

    result = _planner(ledger)(signal, Clock().context())
    _commit(ledger, result)

    _only(result.events, RebalancePlanned)
    later = ledger.account_workflows(signal.account_id, excluding="another")
    assert later.unfinished == (PlanRef(NOW, str(signal.correlation_id)),)


def test_sequencing_when_earlier_plan_unfinished_then_not_ready_and_no_broker_read(
    ledger: WorkflowLedger,
) -> None:
    first, second = _workflow(), _workflow()
    _commit(ledger, _planner(ledger)(first, Clock().context()))
    broker = _worked_example_broker()

    with pytest.raises(NotReadyError, match=str(first.correlation_id)):
        _planner(ledger, broker)(second, Clock().context())

    assert broker.calls == 0


def test_sequencing_when_earlier_plan_emitted_in_the_same_batch_then_not_ready(
    ledger: WorkflowLedger,
) -> None:
    # the first plan's ledger row commits with the batch, after the second signal is handled
    planner = _planner(ledger)
    first, second = _workflow(), _workflow()
    _only(planner(first, Clock().context()).events, RebalancePlanned)

    with pytest.raises(NotReadyError):
        planner(second, Clock().context())


@pytest.mark.parametrize("outcome", [WorkflowEnd.COMPLETED, WorkflowEnd.FAILED])
def test_sequencing_when_earlier_workflow_finished_then_plans(
    ledger: WorkflowLedger, outcome: WorkflowEnd
) -> None:
    planner, clock = _planner(ledger), Clock()
    first, second = _workflow(), _workflow()
    _commit(ledger, planner(first, clock.context()))
    with pytest.raises(NotReadyError):
        planner(second, clock.context())

    _finish(ledger, first, outcome)
    clock.advance(5)
    result = planner(second, clock.context())

    _only(result.events, RebalancePlanned)


def test_sequencing_when_same_workflow_handled_again_then_not_blocked_by_itself(
    ledger: WorkflowLedger,
) -> None:
    planner, signal = _planner(ledger), _workflow()
    first = planner(signal, Clock().context())
    _commit(ledger, first)

    again = planner(signal, Clock().context())

    assert again.events == first.events


def test_sequencing_when_other_account_unfinished_then_plans(ledger: WorkflowLedger) -> None:
    # one handler per broker account (a service instance each), one ledger
    planner_a = _planner(ledger, _worked_example_broker("ACCOUNT-A"))
    planner_b = _planner(ledger, _worked_example_broker("ACCOUNT-B"))
    _commit(ledger, planner_a(_workflow("ACCOUNT-A"), Clock().context()))

    result = planner_b(_workflow("ACCOUNT-B"), Clock().context())

    _only(result.events, RebalancePlanned)


def test_sequencing_when_blocked_for_the_whole_wait_then_workflow_failed_and_previous_abandoned(
    ledger: WorkflowLedger,
) -> None:
    planner, clock = _planner(ledger), Clock()
    first, second, third = _workflow(), _workflow(), _workflow()
    _commit(ledger, planner(first, clock.context()))
    with pytest.raises(NotReadyError):
        planner(second, clock.context())
    clock.advance(WAIT.total_seconds() - 1)
    with pytest.raises(NotReadyError):
        planner(second, clock.context())

    clock.advance(1)
    result = planner(second, clock.context())

    failed = _only(result.events, WorkflowFailed)
    assert failed.failure_step is FailureStep.PORTFOLIO
    assert failed.reason == "previous_workflow_unfinished"
    assert failed.details["previous_correlation_id"] == str(first.correlation_id)
    assert failed.details["previous_planned_at"] == NOW.isoformat()
    assert failed.details["signal_event_id"] == str(second.event_id)
    assert failed.event_id == derive_event_id(second.event_id, "WorkflowFailed")
    # the lost workflow is given up on: it no longer holds the account's later workflows back
    _commit(ledger, result)
    clock.advance(60)
    _only(planner(third, clock.context()).events, RebalancePlanned)


def test_sequencing_when_waited_in_another_process_then_the_wait_starts_again(
    ledger: WorkflowLedger,
) -> None:
    # the wait is this process's: a restarted service gives the outcome time to be consumed
    clock = Clock()
    first, second = _workflow(), _workflow()
    _commit(ledger, _planner(ledger)(first, clock.context()))
    with pytest.raises(NotReadyError):
        _planner(ledger)(second, clock.context())
    clock.advance(WAIT.total_seconds() * 3)

    with pytest.raises(NotReadyError):
        _planner(ledger)(second, clock.context())


@pytest.mark.parametrize("outcome", [WorkflowEnd.COMPLETED, WorkflowEnd.FAILED])
def test_outcome_handler_when_recorded_twice_then_one_row_and_the_first_outcome_stays(
    ledger: WorkflowLedger, outcome: WorkflowEnd
) -> None:
    signal = _workflow()
    _finish(ledger, signal, outcome)
    _finish(ledger, signal, outcome)
    _finish(ledger, signal, WorkflowEnd.FAILED)

    with ledger.engine.connect() as connection:
        rows = connection.execute(sa.select(finished_table)).mappings().all()
    assert [(row["correlation_id"], row["outcome"]) for row in rows] == [
        (str(signal.correlation_id), outcome.value)
    ]


def test_outcome_handler_when_workflow_never_planned_here_then_recorded_harmlessly(
    ledger: WorkflowLedger,
) -> None:
    # a workflow that failed at the strategy step has no plan; its outcome blocks nothing
    _finish(ledger, _workflow(), WorkflowEnd.FAILED)

    _only(_planner(ledger)(_workflow(), Clock().context()).events, RebalancePlanned)
