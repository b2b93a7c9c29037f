"""Domain: a leg's next step from its attempts, and the results folded from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alchemiser_common.events import OrderSide, OrderStatus, OrderType
from alchemiser_execution.domain import (
    Attempt,
    AttemptState,
    LegResult,
    PlannedOrder,
    StepKind,
    Timing,
    execution_result,
    next_step,
    wants_limit,
)

T0 = datetime(2025, 3, 14, 19, 45, tzinfo=UTC)
TIMING = Timing(repeg_interval_s=10, fill_timeout_s=60)
ORDER = PlannedOrder(
    leg=0,
    symbol="TQQQ",
    side=OrderSide.BUY,
    qty=Decimal(100),
    price=Decimal(50),
    fractionable=True,
    full_liquidation=False,
    client_order_id="alc-0",
)


def _attempt(
    n: int = 0,
    state: AttemptState = AttemptState.SUBMITTED,
    *,
    order_type: OrderType = OrderType.LIMIT,
    filled: str = "0",
    price: str | None = None,
) -> Attempt:
    return Attempt(
        account_id="a",
        correlation_id="c",
        leg=0,
        attempt=n,
        client_order_id=f"alc-0-{n}",
        symbol="TQQQ",
        side=OrderSide.BUY,
        order_type=order_type,
        qty=Decimal(100),
        limit_price=Decimal(50) if order_type is OrderType.LIMIT else None,
        close_position=False,
        state=state,
        created_at=T0,
        updated_at=T0,
        broker_order_id=None if state is AttemptState.PENDING else f"b{n}",
        broker_status="new" if state is AttemptState.SUBMITTED else None,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(price) if price else None,
    )


def _step(attempts: list[Attempt], *, after_s: float = 0, cancel_requested: bool = False):  # type: ignore[no-untyped-def]
    return next_step(
        ORDER,
        attempts,
        now=T0 + timedelta(seconds=after_s),
        timing=TIMING,
        cancel_requested=cancel_requested,
    )


def test_next_step_when_no_attempt_then_place_first_for_whole_quantity() -> None:
    step = _step([])
    assert (step.kind, step.attempt, step.qty) == (StepKind.PLACE, 0, Decimal(100))


def test_next_step_when_last_attempt_unresolved_then_resolve() -> None:
    for state in (AttemptState.PENDING, AttemptState.UNKNOWN, AttemptState.NOT_PLACED):
        assert _step([_attempt(state=state)]).kind is StepKind.RESOLVE


def test_next_step_when_limit_open_then_wait_until_repeg_interval_then_cancel() -> None:
    assert _step([_attempt()], after_s=9.9).kind is StepKind.WAIT
    assert _step([_attempt()], after_s=10).kind is StepKind.CANCEL
    assert _step([_attempt()], after_s=11, cancel_requested=True).kind is StepKind.WAIT


def test_next_step_when_market_open_then_cancel_only_after_fill_timeout() -> None:
    market = _attempt(order_type=OrderType.MARKET)
    assert _step([market], after_s=59).kind is StepKind.WAIT
    assert _step([market], after_s=60).kind is StepKind.CANCEL


def test_next_step_when_limit_canceled_with_partial_fill_then_next_attempt_for_the_rest() -> None:
    step = _step([_attempt(state=AttemptState.PARTIALLY_FILLED, filled="30", price="50")])
    assert (step.kind, step.attempt, step.qty) == (StepKind.PLACE, 1, Decimal(70))


def test_next_step_when_filled_across_attempts_then_done_succeeded() -> None:
    attempts = [
        _attempt(0, AttemptState.PARTIALLY_FILLED, filled="30", price="50"),
        _attempt(1, AttemptState.SUBMITTED, filled="70", price="50.1"),
    ]
    step = _step(attempts)
    assert (step.kind, step.succeeded) == (StepKind.DONE, True)


def test_next_step_when_rejected_or_market_ended_short_then_done_failed() -> None:
    rejected = replace(_attempt(state=AttemptState.REJECTED), error="insufficient buying power")
    step = _step([rejected])
    assert (step.kind, step.succeeded, step.error) == (
        StepKind.DONE,
        False,
        "insufficient buying power",
    )
    market = replace(
        _attempt(state=AttemptState.PARTIALLY_FILLED, order_type=OrderType.MARKET, filled="40"),
        broker_status="canceled",
    )
    step = _step([market])
    assert (step.kind, step.error) == (StepKind.DONE, "market order canceled: filled 40 of 100")


def test_wants_limit_when_fractional_liquidation_or_after_last_peg_then_market() -> None:
    kwargs = {"limit_policy": True, "max_repegs": 2}
    assert wants_limit(ORDER, 2, Decimal(10), **kwargs)  # type: ignore[arg-type]
    assert not wants_limit(ORDER, 3, Decimal(10), **kwargs)  # type: ignore[arg-type]
    assert not wants_limit(ORDER, 0, Decimal("10.5"), **kwargs)  # type: ignore[arg-type]
    closing = replace(ORDER, full_liquidation=True)
    assert not wants_limit(closing, 0, Decimal(10), **kwargs)  # type: ignore[arg-type]
    assert not wants_limit(ORDER, 0, Decimal(10), limit_policy=False, max_repegs=2)


def test_execution_result_when_one_leg_partial_then_failed_with_exact_totals() -> None:
    sold = replace(ORDER, leg=0, symbol="SOXL", side=OrderSide.SELL, client_order_id="s")
    bought = replace(ORDER, leg=1, client_order_id="b")
    skipped = replace(ORDER, leg=2, symbol="BRK", qty=Decimal(0), skipped="too small")
    legs = [
        LegResult(sold, (_attempt(0, AttemptState.FILLED, filled="100", price="24.855"),), True),
        LegResult(
            bought,
            (
                _attempt(0, AttemptState.PARTIALLY_FILLED, filled="30", price="50"),
                replace(
                    _attempt(1, AttemptState.PARTIALLY_FILLED, filled="20", price="51"),
                    broker_status="canceled",
                ),
            ),
            False,
            "market order canceled: filled 50 of 100",
        ),
        LegResult(skipped, (), False),
    ]
    result = execution_result(legs)
    assert (result.orders_placed, result.orders_succeeded, result.success) == (2, 1, False)
    assert result.total_trade_value == Decimal("5005.500000")  # 2485.5 + 1500 + 1020
    assert [o.leg for o in result.orders] == [0, 1]
    partial = result.orders[1]
    assert (partial.filled_qty, partial.filled_avg_price, partial.status) == (
        Decimal(50),
        Decimal("50.400000"),
        OrderStatus.CANCELED,
    )
    assert partial.client_order_id == "alc-0-1"
    assert result.failed_symbols == ("TQQQ",)
    assert result.failure_details == {
        "leg_1": "market order canceled: filled 50 of 100",
        "summary": "1 of 2 orders failed",
        "orders_placed": "2",
    }
    assert (result.symbols_sold, result.symbols_bought) == (("SOXL",), ("TQQQ",))
