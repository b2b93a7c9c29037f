"""Domain: the plan rules (values in, violations out) and the workflow verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alchemiser_execution.domain import (
    PlanViolation,
    WorkflowFailure,
    WorkflowStatus,
    WorkflowVerdict,
    funding_violation,
    plan_legs,
    tradability_violations,
    weight_violations,
    workflow_verdict,
)
from alchemiser_execution.domain.plan_rules import (
    FUNDING,
    TARGET_WEIGHT_RANGE,
    TARGET_WEIGHT_SUM,
    TRADABLE,
    describe,
)
from alchemiser_execution.testing import buy, hold, sell

TOLERANCE = Decimal("0.01")
WAIT = timedelta(seconds=120)
FAILURE = WorkflowFailure(
    failure_step="strategy", reason="no_session", failed_at=datetime(2025, 3, 14, tzinfo=UTC)
)


def test_weights_when_each_in_range_and_sum_within_tolerance_then_no_violation() -> None:
    items = [buy("A", "1", weight="0.5"), sell("B", "1", weight="0.3"), hold("C")]
    items.append(buy("D", "1", weight="0.21"))  # sum 1.01: the tolerance's edge
    assert weight_violations(items) == []


def test_weights_when_one_above_one_then_range_violation_with_the_number() -> None:
    (violation,) = weight_violations([buy("A", "1", weight="1.000000000001")])
    assert violation == PlanViolation(
        TARGET_WEIGHT_RANGE, "target weight of A is 1.000000000001, outside [0, 1]"
    )


def test_weights_when_sum_is_three_then_sum_violation_with_the_number() -> None:
    items = [buy(s, "1", weight="1") for s in ("A", "B", "C")]
    (violation,) = weight_violations(items)
    assert violation == PlanViolation(TARGET_WEIGHT_SUM, "target weights sum to 3, above 1 + 0.01")


def test_funding_when_buys_within_cash_and_proceeds_plus_tolerance_then_none() -> None:
    legs = plan_legs([sell("A", "500"), buy("B", "1515")])
    held, prices = {"A": Decimal(10)}, {"A": Decimal(100)}
    assert (
        funding_violation(
            legs, cash=Decimal(1000), positions=held, prices=prices, tolerance=TOLERANCE
        )
        is None
    )


def test_funding_when_buys_exceed_allowance_then_violation_names_the_numbers() -> None:
    legs = plan_legs([sell("A", "500"), buy("B", "1516")])
    held, prices = {"A": Decimal(10)}, {"A": Decimal(100)}
    violation = funding_violation(
        legs, cash=Decimal(1000), positions=held, prices=prices, tolerance=TOLERANCE
    )
    assert violation == PlanViolation(
        FUNDING,
        "buys of 1516.00 exceed cash 1000.00 plus sell proceeds 500.00 plus 1% tolerance (1515.00)",
    )


def test_funding_when_sell_exceeds_the_position_then_proceeds_capped_at_its_value() -> None:
    legs = plan_legs([sell("A", "5000"), buy("B", "2000")])
    held, prices = {"A": Decimal(2)}, {"A": Decimal(100)}  # 200 worth held
    violation = funding_violation(
        legs, cash=Decimal(1000), positions=held, prices=prices, tolerance=TOLERANCE
    )
    assert violation is not None and "sell proceeds 200.00" in violation.detail


def test_funding_when_only_sells_then_none_even_without_cash() -> None:
    legs = plan_legs([sell("A", "500")])
    assert (
        funding_violation(legs, cash=Decimal(0), positions={}, prices={}, tolerance=TOLERANCE)
        is None
    )


def test_tradability_when_symbols_unavailable_then_one_violation_each_sorted() -> None:
    violations = tradability_violations({"Z": "Z is not tradable", "A": "unknown asset A"})
    assert violations == [
        PlanViolation(TRADABLE, "unknown asset A"),
        PlanViolation(TRADABLE, "Z is not tradable"),
    ]
    assert describe(violations) == "tradable: unknown asset A; tradable: Z is not tradable"


def _verdict(
    known: bool,
    seconds: float,
    *,
    deferred_before: bool = True,
    failure: WorkflowFailure | None = None,
    has_run: bool = False,
) -> WorkflowVerdict:
    return workflow_verdict(
        status=WorkflowStatus(known=known, failure=failure),
        has_run=has_run,
        plan_age=timedelta(seconds=seconds),
        wait=WAIT,
        deferred_before=deferred_before,
    )


def test_verdict_when_known_then_proceed_whatever_the_age() -> None:
    assert _verdict(True, 86_400) is WorkflowVerdict.PROCEED
    assert _verdict(True, 0, deferred_before=False) is WorkflowVerdict.PROCEED


def test_verdict_when_unknown_then_wait_while_young_and_reject_from_the_bound() -> None:
    assert (_verdict(False, 119), _verdict(False, -5), _verdict(False, 120)) == (
        WorkflowVerdict.WAIT,
        WorkflowVerdict.WAIT,
        WorkflowVerdict.REJECT,
    )


def test_verdict_when_unknown_and_old_on_first_look_then_wait_once() -> None:
    assert _verdict(False, 86_400, deferred_before=False) is WorkflowVerdict.WAIT


def test_verdict_when_run_exists_then_proceed_even_if_unknown_or_failed() -> None:
    assert _verdict(False, 86_400, has_run=True) is WorkflowVerdict.PROCEED
    assert _verdict(True, 0, has_run=True, failure=FAILURE) is WorkflowVerdict.PROCEED
    assert _verdict(False, 0, has_run=True, failure=FAILURE) is WorkflowVerdict.PROCEED


def test_verdict_when_failed_without_run_then_ended_whether_started_or_not() -> None:
    assert _verdict(True, 0, failure=FAILURE) is WorkflowVerdict.ENDED
    assert _verdict(False, 0, failure=FAILURE, deferred_before=False) is WorkflowVerdict.ENDED
    assert _verdict(True, 86_400, failure=FAILURE) is WorkflowVerdict.ENDED


def test_failure_when_described_then_step_reason_and_time() -> None:
    assert FAILURE.describe() == "failed at step strategy (no_session) at 2025-03-14T00:00:00+00:00"
