"""Domain results -> SignalGenerated payload: reasons from the trace, exact weights, cash."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

from alchemiser_common.events import (
    AllocationStatus,
    SignalGenerated,
    WorkflowStarted,
    signal_hash,
)
from alchemiser_common.events.samples import sample_workflow_started
from alchemiser_strategy.app import StrategyRun
from alchemiser_strategy.domain import (
    MarketData,
    Strategy,
    WeightedStrategy,
    evaluate,
    load_strategy,
    run_strategies,
)
from alchemiser_strategy.domain.sample_prices import PathSet
from alchemiser_strategy.signals import (
    UNCONDITIONAL,
    event_weights,
    signal_payload,
    strategy_allocations,
    symbol_reasons,
)

SWITCH = """(defsymphony "switch" {}
 (if (> (rsi "AAA" {:window 10}) 70)
   (asset "UVXY")
   (group "rest"
     [(weight-equal [(asset "BIL") (asset "TLT")])
      (filter (rsi {:window 10}) (select-top 1) [(asset "AAA") (asset "BBB")])])))
"""
TWO_PATHS = """(defsymphony "two" {}
 (weight-equal
   [(if (> (rsi "AAA" {:window 10}) 30) (asset "XXX") (asset "YYY"))
    (if (< (rsi "BBB" {:window 10}) 70) (asset "XXX") (asset "ZZZ"))]))
"""
FIXED = '(defsymphony "fixed" {} (weight-specified 0.25 (asset "AAA") 0.75 (asset "BBB")))'


def _market(aaa_rsi: float = 40.0, bbb_rsi: float = 60.0) -> MarketData:
    symbols = ["AAA", "BBB", "BIL", "TLT", "UVXY", "XXX", "YYY", "ZZZ"]
    return PathSet(symbols, length=120).rsi("AAA", aaa_rsi).rsi("BBB", bbb_rsi).market()


def _strategy(text: str, name: str) -> Strategy:
    return load_strategy(text, name)


def _run(*items: tuple[Strategy, str], market: MarketData) -> StrategyRun:
    strategies = tuple(WeightedStrategy(s, Decimal(w)) for s, w in items)
    portfolio = run_strategies(strategies, market, places=12)
    return StrategyRun(market.as_of, "snapshot-1", strategies, portfolio)


def test_symbol_reasons_when_else_branch_then_reason_is_the_false_condition() -> None:
    strategy = _strategy(SWITCH, "switch.clj")
    allocation = evaluate(strategy, _market(aaa_rsi=40.0, bbb_rsi=60.0))

    reasons = symbol_reasons(strategy, allocation)

    assert set(reasons) == {"BIL", "TLT", "BBB"}
    condition = '(> (rsi "AAA" {:window 10}) 70) with 40.0000 vs 70.0000 -> false'
    assert reasons["BIL"] == f"switch.clj:2:6: {condition}"
    assert reasons["TLT"] == reasons["BIL"]
    # the filter's winner names the condition that led there and then the ranking
    first, ranking = reasons["BBB"].split("; ")
    assert first == reasons["BIL"]
    assert ranking.startswith("switch.clj:6:7: (filter (rsi {:window 10}) (select-top 1))")
    assert ranking.endswith("-> BBB")


def test_symbol_reasons_when_then_branch_then_reason_is_the_true_condition() -> None:
    strategy = _strategy(SWITCH, "switch.clj")
    allocation = evaluate(strategy, _market(aaa_rsi=75.0))

    reasons = symbol_reasons(strategy, allocation)

    assert reasons == {
        "UVXY": 'switch.clj:2:6: (> (rsi "AAA" {:window 10}) 70) with 75.0000 vs 70.0000 -> true'
    }


def test_symbol_reasons_when_symbol_reached_by_two_paths_then_both_are_listed() -> None:
    strategy = _strategy(TWO_PATHS, "two.clj")
    allocation = evaluate(strategy, _market(aaa_rsi=40.0, bbb_rsi=60.0))

    reasons = symbol_reasons(strategy, allocation)

    assert list(allocation.weights) == ["XXX"]
    left, right = reasons["XXX"].split(" | ")
    assert left.startswith('two.clj:3:9: (> (rsi "AAA" {:window 10}) 30)')
    assert right.startswith('two.clj:4:9: (< (rsi "BBB" {:window 10}) 70)')


def test_symbol_reasons_when_no_decision_then_unconditional() -> None:
    strategy = _strategy(FIXED, "fixed.clj")
    allocation = evaluate(strategy, _market())

    assert symbol_reasons(strategy, allocation) == {"AAA": UNCONDITIONAL, "BBB": UNCONDITIONAL}


def test_event_weights_when_thirds_then_twelve_places_and_residue_on_first_largest() -> None:
    third = Decimal(1) / Decimal(3)  # 28 significant digits, sum 0.999...9

    weights = event_weights({"CCC": third, "AAA": third, "BBB": third})

    assert weights == {
        "AAA": Decimal("0.333333333334"),
        "BBB": Decimal("0.333333333333"),
        "CCC": Decimal("0.333333333333"),
    }
    assert sum(weights.values()) == Decimal(1)


def test_event_weights_when_sevenths_then_residue_goes_to_the_largest_weight() -> None:
    weights = event_weights(
        {"AAA": Decimal(2) / 7, "BBB": Decimal(3) / 7, "CCC": Decimal(2) / 7, "DDD": Decimal(0)}
    )

    assert sum(weights.values()) == Decimal(1)
    assert set(weights) == {"AAA", "BBB", "CCC"}  # the zero weight is dropped
    assert all(weight.as_tuple().exponent == -12 for weight in weights.values())
    assert weights["AAA"] == weights["CCC"] == Decimal("0.285714285714")
    assert weights["BBB"] == Decimal(1) - 2 * Decimal("0.285714285714")


def test_event_weights_when_empty_then_empty() -> None:
    assert event_weights({}) == {}


def _signal(run: StrategyRun, cause: WorkflowStarted) -> SignalGenerated:
    return SignalGenerated.caused_by(
        cause,
        source=sample_workflow_started().source,
        occurred_at=datetime(2025, 1, 2, tzinfo=UTC),
        **signal_payload(run, cause.correlation_id),
    )


def test_signal_payload_when_strategies_succeed_then_weights_sum_to_one_and_hash_verifies() -> None:
    cause = sample_workflow_started().model_copy(update={"correlation_id": uuid4()})
    run = _run(
        (_strategy(SWITCH, "switch.clj"), "2"),
        (_strategy(FIXED, "fixed.clj"), "1"),
        market=_market(),
    )

    signal = _signal(run, cause)

    assert sum(w.weight for w in signal.consolidated_portfolio) == Decimal(1)
    assert {w.symbol: w.weight for w in signal.consolidated_portfolio} == {
        "AAA": Decimal("0.083333333333"),
        "BBB": Decimal("0.583333333333"),  # 2/3 x 1/2 + 1/3 x 3/4
        "BIL": Decimal("0.166666666667"),  # 2/3 x 1/2 x 1/2
        "TLT": Decimal("0.166666666667"),
    }
    assert signal.signal_hash == signal_hash(
        signal.consolidated_portfolio, signal.signals, cause.correlation_id
    )
    by_strategy = {(s.strategy, s.symbol): s.target_weight for s in signal.signals}
    assert by_strategy[("fixed", "BBB")] == Decimal("0.75")
    assert by_strategy[("switch", "BBB")] == Decimal("0.5")
    assert signal.as_of == run.as_of
    assert signal.market_snapshot_id == "snapshot-1"


def test_strategy_allocations_when_one_file_fails_then_it_fails_and_rest_renormalised() -> None:
    broken = _strategy(
        '(defsymphony "b" {} (if (> (rsi "QQQ" {:window 10}) 50) (asset "A") (asset "B")))',
        "broken.clj",
    )
    run = _run(
        (_strategy(FIXED, "fixed.clj"), "0.25"),
        (broken, "0.75"),
        market=_market(),
    )

    allocations = {a.strategy: a for a in strategy_allocations(run)}

    assert allocations["fixed"].status is AllocationStatus.OK
    assert allocations["fixed"].allocation_weight == Decimal(1)
    assert allocations["broken"].status is AllocationStatus.FAILED
    assert allocations["broken"].allocation_weight == Decimal(0)
    assert allocations["broken"].error is not None
    assert allocations["broken"].error.startswith("broken.clj:1:28: no price data for symbol 'QQQ'")


def test_signal_payload_when_every_strategy_fails_then_empty_portfolio_is_a_valid_signal() -> None:
    cause = sample_workflow_started()
    market = PathSet(["ZZZ"], length=30).market(end=date(2024, 6, 28))
    run = _run(
        (_strategy(SWITCH, "switch.clj"), "1"), (_strategy(FIXED, "fixed.clj"), "1"), market=market
    )

    signal = _signal(run, cause)

    assert run.portfolio.all_cash
    assert signal.consolidated_portfolio == []
    assert signal.signals == []
    assert [a.status for a in signal.strategy_allocations] == [AllocationStatus.FAILED] * 2
    assert signal.signal_hash == signal_hash([], [], cause.correlation_id)
