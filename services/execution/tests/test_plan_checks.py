"""Execution validates what it executes: plan rules, known and open workflows, before any order.

Through the handler over the real Alpaca adapter and the paper exchange. A rejected plan
leaves nothing behind: no order at the broker, no run and no attempt recorded.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from alchemiser_broker import ACCOUNT_MISMATCH, AssetInfo
from alchemiser_broker.alpaca import AlpacaBroker
from alchemiser_common.errors import DeadLetterReason
from alchemiser_common.events import FailureStep, PlanItem, RebalancePlanned
from alchemiser_common.runtime.handlers import InvalidEventError, NotReadyError
from alchemiser_devtools.exchange import PaperExchange, adapter_settings
from alchemiser_execution.adapters.attempts import AttemptStore
from alchemiser_execution.adapters.schema import workflow_table
from alchemiser_execution.adapters.workflows import WorkflowLog
from alchemiser_execution.domain.plan_rules import UNKNOWN_WORKFLOW_WAIT_S
from alchemiser_execution.exceptions import (
    InvalidPlanError,
    UnknownWorkflowError,
    WorkflowEndedError,
    WorkflowNotSeenYetError,
)
from alchemiser_execution.handlers import WorkflowFailedHandler
from alchemiser_execution.testing import (
    FAST_CONFIG,
    buy,
    context,
    fail_workflow,
    failure_for,
    make_handler,
    outputs_by_type,
    planned,
    register_workflow,
    sell,
)


@pytest.fixture
def exchange(paper_exchange: PaperExchange) -> PaperExchange:
    paper_exchange.set_prices({"SOXL": "25", "TQQQ": "50", "SPY": "500"})
    account = paper_exchange.account
    paper_exchange.exchange.set_position(account, "SOXL", Decimal(400), Decimal(20))  # 10,000
    paper_exchange.exchange.set_cash(account, Decimal(10_000))
    return paper_exchange


@pytest.fixture
def broker(exchange: PaperExchange) -> AlpacaBroker:
    return AlpacaBroker(adapter_settings(exchange.url), sleep=lambda _s: None)


def _planned(exchange: PaperExchange, items: list[PlanItem]) -> RebalancePlanned:
    """A plan for the exchange's account."""
    return planned(items, account_id=exchange.account)


class _Halted(AlpacaBroker):
    """The broker knows TQQQ but does not trade it (the exchange trades every priced symbol)."""

    def get_asset(self, symbol: str) -> AssetInfo:
        asset = super().get_asset(symbol)
        return dataclasses.replace(asset, tradable=False) if symbol == "TQQQ" else asset


def _rejected(
    broker: AlpacaBroker, store: AttemptStore, exchange: PaperExchange, event: RebalancePlanned
) -> InvalidEventError:
    """Handle ``event``, expect a rejection, and check that nothing was recorded or sent."""
    with pytest.raises(InvalidEventError) as raised:
        make_handler(broker, store)(event, context())
    _assert_nothing_done(store, exchange, event)
    return raised.value


def _assert_nothing_done(
    store: AttemptStore, exchange: PaperExchange, event: RebalancePlanned
) -> None:
    assert exchange.orders() == []
    assert store.find_run(event.account_id, str(event.correlation_id)) is None
    assert store.attempts_of(event.account_id, str(event.correlation_id)) == []


def _invalid_plan(
    broker: AlpacaBroker, store: AttemptStore, exchange: PaperExchange, items: list[PlanItem]
) -> str:
    event = register_workflow(store, _planned(exchange, items))
    error = _rejected(broker, store, exchange, event)
    assert isinstance(error, InvalidPlanError)
    assert error.reason is DeadLetterReason.INVALID_PLAN
    return str(error)


# -- the plan rules ---------------------------------------------------------------------------


def test_handle_when_a_target_weight_is_above_one_then_invalid_plan_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    message = _invalid_plan(broker, store, exchange, [buy("TQQQ", "1000", weight="1.5")])
    assert "target_weight_range" in message and "TQQQ is 1.5" in message


def test_handle_when_target_weights_sum_above_one_then_invalid_plan_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    items = [buy("TQQQ", "1000", weight="0.6"), buy("SPY", "1000", weight="0.5")]
    message = _invalid_plan(broker, store, exchange, items)
    assert "target_weight_sum" in message and "sum to 1.1" in message


def test_handle_when_buys_exceed_cash_and_sell_proceeds_then_invalid_plan_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    # cash 10,000 + proceeds 5,000 = 15,000, plus 1 %: 15,150 < 20,000
    items = [sell("SOXL", "5000"), buy("TQQQ", "20000")]
    message = _invalid_plan(broker, store, exchange, items)
    assert "funding" in message
    assert "buys of 20000.00 exceed cash 10000.00 plus sell proceeds 5000.00" in message
    assert "(15150.00)" in message


def test_handle_when_sell_of_unheld_symbol_would_fund_the_buys_then_invalid_plan(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    # SPY is not held: its sell yields nothing, so only the cash can pay for the buy
    items = [sell("SPY", "50000"), buy("TQQQ", "20000")]
    message = _invalid_plan(broker, store, exchange, items)
    assert "sell proceeds 0.00" in message


def test_handle_when_a_symbol_is_not_tradable_then_invalid_plan_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    halted = _Halted(adapter_settings(exchange.url), sleep=lambda _s: None)
    message = _invalid_plan(halted, store, exchange, [buy("TQQQ", "1000")])
    assert "tradable: TQQQ is not tradable" in message


def test_handle_when_a_symbol_is_unknown_at_the_broker_then_invalid_plan_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    message = _invalid_plan(broker, store, exchange, [buy("NOPE", "1000")])
    assert "tradable: unknown asset NOPE" in message


def test_handle_when_forged_plan_weights_sum_to_three_with_recomputed_hash_then_rejected(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    items = [
        buy("TQQQ", "1000", weight="1"),
        buy("SPY", "1000", weight="1"),
        sell("SOXL", "1000", weight="1"),
    ]
    message = _invalid_plan(broker, store, exchange, items)  # planned() recomputes the hash
    assert "sum to 3" in message


def test_handle_when_buys_within_the_cash_tolerance_then_executed(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    exchange.exchange.set_cash(exchange.account, Decimal(10_100))  # the broker needs 10,100
    # 10,000 x 1.01 would not do: the check reads 10,100 x 1.01 = 10,201 >= 10,100
    items = [buy("TQQQ", "10100", weight="0.99")]
    event = register_workflow(store, _planned(exchange, items))
    out = outputs_by_type(make_handler(broker, store)(event, context()))
    assert "WorkflowCompleted" in out


# -- the workflow must exist ------------------------------------------------------------------


def test_handle_when_workflow_unknown_and_plan_young_then_not_ready_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = _planned(exchange, [buy("TQQQ", "1000")])
    young = context(lambda: event.occurred_at + timedelta(seconds=UNKNOWN_WORKFLOW_WAIT_S - 1))
    with pytest.raises(NotReadyError) as raised:
        make_handler(broker, store)(event, young)
    assert isinstance(raised.value, WorkflowNotSeenYetError)
    assert "waiting for it up to 120 s" in str(raised.value)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_workflow_unknown_and_plan_old_then_deferred_once_then_unknown_workflow(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store)
    event = _planned(exchange, [buy("TQQQ", "1000")])
    old = context(lambda: event.occurred_at + timedelta(seconds=UNKNOWN_WORKFLOW_WAIT_S))
    with pytest.raises(NotReadyError):  # first look: its trigger may sit behind it in a backlog
        handler(event, old)
    with pytest.raises(InvalidEventError) as raised:
        handler(event, old)
    assert isinstance(raised.value, UnknownWorkflowError)
    assert raised.value.reason is DeadLetterReason.UNKNOWN_WORKFLOW
    assert str(event.correlation_id) in str(raised.value)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_wait_setting_is_short_then_plan_rejected_sooner(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store, workflow_wait_s=5)
    event = _planned(exchange, [buy("TQQQ", "1000")])
    sooner = context(lambda: event.occurred_at + timedelta(seconds=4))
    later = context(lambda: event.occurred_at + timedelta(seconds=5))
    with pytest.raises(NotReadyError):
        handler(event, sooner)
    with pytest.raises(UnknownWorkflowError):
        handler(event, later)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_old_plan_and_trigger_consumed_after_first_look_then_plan_executes(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    # a backlog after an outage: plan and trigger are old, the plan is looked at first
    handler = make_handler(broker, store)
    event = _planned(exchange, [buy("TQQQ", "1000")])
    old = context(lambda: event.occurred_at + timedelta(hours=1))
    with pytest.raises(NotReadyError):
        handler(event, old)
    register_workflow(store, event)  # committed with the rest of the batch
    assert "WorkflowCompleted" in outputs_by_type(handler(event, old))


def test_handle_when_workflow_unknown_then_trigger_arrives_then_plan_executes(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store)
    event = _planned(exchange, [buy("TQQQ", "1000")])
    with pytest.raises(NotReadyError):
        handler(event, context())
    register_workflow(store, event)  # the trigger is consumed on its own topic meanwhile
    out = outputs_by_type(handler(event, context()))
    assert "WorkflowCompleted" in out
    (order,) = exchange.orders()
    assert order.symbol == "TQQQ"


def test_handle_when_workflow_known_then_executes_even_if_plan_is_old(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(
        store, _planned(exchange, [sell("SOXL", "5000"), buy("TQQQ", "2000")])
    )
    old = context(lambda: event.occurred_at + timedelta(hours=1))
    out = outputs_by_type(make_handler(broker, store)(event, old))
    assert out["TradeExecuted"].orders_placed == 2
    assert "WorkflowCompleted" in out


def test_handle_when_run_recorded_but_workflow_row_missing_then_redelivery_resumes(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    handler = make_handler(broker, store)
    event = register_workflow(store, _planned(exchange, [buy("TQQQ", "1000")]))
    first = outputs_by_type(handler(event, context()))
    with store.engine.begin() as connection:  # a run from before the workflows table existed
        connection.execute(workflow_table.delete())
    old = context(lambda: event.occurred_at + timedelta(hours=1))
    again = outputs_by_type(handler(event, old))
    assert again["WorkflowCompleted"].event_id == first["WorkflowCompleted"].event_id
    assert len(exchange.orders()) == 1


def test_handle_when_another_workflow_executed_after_the_plan_was_made_then_stale_plan_fast(
    broker: AlpacaBroker, store: AttemptStore, exchange: PaperExchange
) -> None:
    handler = make_handler(broker, store)
    # Two plans made from the same account snapshot (a backlog), the second executed last.
    first = register_workflow(store, _planned(exchange, [buy("TQQQ", "2500")]))
    second = register_workflow(
        store,
        _planned(exchange, [buy("SPY", "5000")]).model_copy(
            update={"occurred_at": first.occurred_at}
        ),
    )
    assert outputs_by_type(handler(first, context()))["WorkflowCompleted"]
    orders_before = len(exchange.orders())

    out = outputs_by_type(handler(second, context()))

    failed = out["WorkflowFailed"]
    assert failed.reason == "stale_plan"
    assert "plan it again" in failed.details["detail"]
    assert "TradeExecuted" not in out
    assert len(exchange.orders()) == orders_before  # nothing sent, no waiting on cash


def test_handle_when_plan_made_after_the_previous_workflow_then_executes(
    broker: AlpacaBroker, store: AttemptStore, exchange: PaperExchange
) -> None:
    handler = make_handler(broker, store)
    first = register_workflow(store, _planned(exchange, [buy("TQQQ", "2500")]))
    assert outputs_by_type(handler(first, context()))["WorkflowCompleted"]
    later = register_workflow(
        store, _planned(exchange, [buy("SPY", "2500")])
    )  # made after it finished

    out = outputs_by_type(handler(later, context()))

    assert out["WorkflowCompleted"]
    assert out["TradeExecuted"].orders_placed == 1


# -- the workflow must not have ended ----------------------------------------------------------


def _ended(handler_error: pytest.ExceptionInfo[InvalidEventError]) -> WorkflowEndedError:
    assert isinstance(handler_error.value, WorkflowEndedError)
    assert handler_error.value.reason is DeadLetterReason.WORKFLOW_ENDED
    return handler_error.value


def test_handle_when_workflow_failed_before_its_plan_then_workflow_ended_and_nothing_done(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    # the trigger's --wait timed out and failed the workflow; then the late plan arrives
    event = register_workflow(store, _planned(exchange, [buy("TQQQ", "1000")]))
    fail_workflow(store, event, failure_for(event, step=FailureStep.STRATEGY, reason="timeout"))
    with pytest.raises(InvalidEventError) as raised:
        make_handler(broker, store)(event, context())
    message = str(_ended(raised))
    assert str(event.correlation_id) in message
    assert "failed at step strategy (timeout)" in message
    assert "no run" in message
    _assert_nothing_done(store, exchange, event)


def test_handle_when_failure_seen_but_trigger_never_then_ended_on_first_look(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = _planned(exchange, [buy("TQQQ", "1000")])
    fail_workflow(store, event)  # the failure, not the trigger: refused, not waited for
    with pytest.raises(InvalidEventError) as raised:
        make_handler(broker, store)(event, context())
    _ended(raised)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_failure_handled_earlier_in_the_same_batch_then_ended_before_its_commit(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, _planned(exchange, [buy("TQQQ", "1000")]))
    # the runtime commits the failure's unit of work with the batch, after the plan's handler
    result = WorkflowFailedHandler(WorkflowLog(store.engine))(failure_for(event), context())
    assert result.events == ()
    with pytest.raises(InvalidEventError) as raised:
        make_handler(broker, store)(event, context())
    _ended(raised)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_failed_workflow_plan_also_breaks_a_broker_rule_then_invalid_plan(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, _planned(exchange, [buy("NOPE", "1000")]))
    fail_workflow(store, event)
    with pytest.raises(InvalidEventError) as raised:
        make_handler(broker, store)(event, context())
    assert isinstance(raised.value, InvalidPlanError)  # the forgery is what an operator needs
    assert "unknown asset NOPE" in str(raised.value)
    _assert_nothing_done(store, exchange, event)


def test_handle_when_workflow_fails_after_its_run_was_recorded_then_redelivery_resumes(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    # the plan was executing (its run and orders recorded) when the failure arrived, e.g. a
    # crash before the outputs were committed: the run is resumed, its orders never abandoned
    handler = make_handler(broker, store)
    event = register_workflow(store, _planned(exchange, [buy("TQQQ", "1000")]))
    first = outputs_by_type(handler(event, context()))
    fail_workflow(store, event, failure_for(event, reason="timeout"))
    again = outputs_by_type(handler(event, context()))
    assert again["WorkflowCompleted"].event_id == first["WorkflowCompleted"].event_id
    assert again["TradeExecuted"].event_id == first["TradeExecuted"].event_id
    assert len(exchange.orders()) == 1


def test_handle_when_executions_own_failure_comes_back_then_plan_still_resumes(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    capped = dataclasses.replace(FAST_CONFIG, max_order_value=Decimal(10))
    handler = make_handler(broker, store, capped)
    event = register_workflow(store, _planned(exchange, [buy("TQQQ", "1000")]))
    (refused,) = handler(event, context())
    assert refused.event_type == "WorkflowFailed"
    fail_workflow(store, event, refused)  # execution consumes its own outcome
    (again,) = handler(event, context())  # a redelivered plan: the same outcome, no DLQ
    assert again.event_id == refused.event_id
    assert exchange.orders() == []


# -- the account --------------------------------------------------------------------------------


def test_handle_when_plan_is_for_another_account_then_workflow_failed_and_nothing_sent(
    exchange: PaperExchange, broker: AlpacaBroker, store: AttemptStore
) -> None:
    event = register_workflow(store, planned([buy("TQQQ", "1000")], account_id="PA-SOMEONE-ELSE"))

    outputs = outputs_by_type(make_handler(broker, store)(event, context()))

    failed = outputs["WorkflowFailed"]
    assert failed.reason == ACCOUNT_MISMATCH
    assert "PA-SOMEONE-ELSE" in failed.details["detail"]
    assert exchange.account in failed.details["detail"]
    assert failed.failed_symbols == ["TQQQ"]
    assert "TradeExecuted" not in outputs
    assert exchange.orders() == []
    assert store.attempts_of(event.account_id, str(event.correlation_id)) == []
