"""Property tests of the planner over random valid accounts and targets."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from alchemiser_portfolio.domain import (
    AccountSnapshot,
    PlannerConfig,
    Position,
    TradeAction,
    plan_rebalance,
)

D = Decimal
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH"]
HALF_CENT = D("0.005")

cash_st = st.decimals(min_value=D("0"), max_value=D("2000000"), places=2)
qty_st = st.decimals(min_value=D("0.000001"), max_value=D("20000"), places=6)
price_st = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
reserve_st = st.decimals(min_value=D("0"), max_value=D("0.2"), places=3)


@st.composite
def accounts_and_targets(draw: st.DrawFn) -> tuple[dict[str, Decimal], AccountSnapshot]:
    """A priced account and targets whose weights (6 places) sum to exactly 1."""
    held = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=5))
    targeted = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, min_size=1, max_size=6))
    positions = {s: Position(draw(qty_st), draw(price_st)) for s in held}
    prices = {s: draw(price_st) for s in targeted if s not in held}
    shares = [draw(st.integers(min_value=1, max_value=100)) for _ in targeted]
    whole = sum(shares)
    weights = [(D(n) / whole).quantize(D("0.000001"), rounding=ROUND_DOWN) for n in shares[:-1]]
    weights.append(D(1) - sum(weights, D(0)))
    account = AccountSnapshot(cash=draw(cash_st), positions=positions, prices=prices)
    return dict(zip(targeted, weights, strict=True)), account


@settings(max_examples=300, deadline=None)
@given(case=accounts_and_targets(), reserve=reserve_st)
def test_plan_when_random_valid_inputs_then_targets_share_out_deployable(
    case: tuple[dict[str, Decimal], AccountSnapshot], reserve: Decimal
) -> None:
    targets, account = case
    plan = plan_rebalance(targets, account, PlannerConfig(cash_reserve_pct=reserve))

    held = account.positions.values()
    value = account.cash + sum((p.qty * (p.price or D(0)) for p in held), D(0))
    deployable = value * (1 - reserve)
    total_target = sum((item.target_value for item in plan.items), D(0))
    # each target is rounded once to cents: at most half a cent off per item
    assert abs(total_target - deployable) <= HALF_CENT * len(plan.items)
    assert abs(plan.deployable_value - deployable) <= HALF_CENT
    assert abs(plan.total_portfolio_value - value) <= HALF_CENT


@settings(max_examples=300, deadline=None)
@given(case=accounts_and_targets(), reserve=reserve_st)
def test_plan_when_random_valid_inputs_then_trades_respect_minimum_and_order(
    case: tuple[dict[str, Decimal], AccountSnapshot], reserve: Decimal
) -> None:
    targets, account = case
    config = PlannerConfig(cash_reserve_pct=reserve)
    plan = plan_rebalance(targets, account, config)

    total = plan.total_portfolio_value
    minimum = total * D("0.01") if total < 1000 else D("5")
    for item in plan.items:
        assert item.trade_amount == item.target_value - item.current_value
        if item.action is TradeAction.HOLD:
            assert item.trade_amount == 0 or abs(item.trade_amount) < minimum
        else:
            assert abs(item.trade_amount) >= minimum
            assert (item.action is TradeAction.BUY) == (item.trade_amount > 0)
        assert item.full_liquidation == (item.action is TradeAction.SELL and not item.target_value)
        if targets.get(item.symbol, D(0)) == 0 and item.action is TradeAction.SELL:
            assert item.full_liquidation
    ranks = [{"SELL": 0, "BUY": 1, "HOLD": 2}[item.action.value] for item in plan.items]
    assert ranks == sorted(ranks)
    traded = [i for i in plan.items if i.action is not TradeAction.HOLD]
    assert plan.total_trade_value == sum((abs(i.trade_amount) for i in traded), D(0))
    assert {i.symbol for i in plan.items} == set(targets) | set(account.positions)
