"""Unit tests of the rebalance planner's rules (exact Decimal results, worked by hand)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser_portfolio.domain import (
    AccountSnapshot,
    PlanItem,
    PlannerConfig,
    Position,
    RebalancePlan,
    TradeAction,
    plan_rebalance,
)
from alchemiser_portfolio.exceptions import (
    InvalidAccountError,
    InvalidTargetsError,
    MissingPriceError,
)

D = Decimal
NO_RESERVE = PlannerConfig(cash_reserve_pct=D("0"))


def _by_symbol(plan: RebalancePlan) -> dict[str, PlanItem]:
    return {item.symbol: item for item in plan.items}


def _worked_example() -> RebalancePlan:
    account = AccountSnapshot(
        cash=D("10000.00"),
        positions={
            "SPY": Position(qty=D("10"), price=D("400.00")),
            "BIL": Position(qty=D("3"), price=D("91.50")),
        },
        prices={"QQQ": D("350.00"), "TLT": D("95.00")},
    )
    return plan_rebalance({"SPY": D("0.5"), "QQQ": D("0.3"), "TLT": D("0.2")}, account)


def test_plan_when_worked_example_then_exact_values() -> None:
    # value      = 10000.00 + 10 x 400.00 + 3 x 91.50 = 10000 + 4000 + 274.50 = 14274.50
    # deployable = 14274.50 x (1 - 0.01) = 14131.755 (exact) -> 14131.76 reported
    # SPY: target 0.5 x 14131.755 = 7065.8775 -> 7065.88; trade 7065.88 - 4000.00 = 3065.88
    # QQQ: target 0.3 x 14131.755 = 4239.5265 -> 4239.53; trade 4239.53 (not held)
    # TLT: target 0.2 x 14131.755 = 2826.351  -> 2826.35; trade 2826.35
    # BIL: held, not targeted -> target 0, trade -274.50, full liquidation
    # total trade = 274.50 + 3065.88 + 4239.53 + 2826.35 = 10406.26
    plan = _worked_example()

    assert plan.total_portfolio_value == D("14274.50")
    assert plan.deployable_value == D("14131.76")
    assert plan.total_trade_value == D("10406.26")
    items = _by_symbol(plan)
    assert (items["SPY"].target_value, items["SPY"].trade_amount) == (D("7065.88"), D("3065.88"))
    assert (items["QQQ"].target_value, items["QQQ"].trade_amount) == (D("4239.53"), D("4239.53"))
    assert (items["TLT"].target_value, items["TLT"].trade_amount) == (D("2826.35"), D("2826.35"))
    assert (items["BIL"].target_value, items["BIL"].trade_amount) == (D("0.00"), D("-274.50"))
    assert items["SPY"].current_value == D("4000.00")
    assert [i.action for i in plan.items] == [
        TradeAction.SELL,
        TradeAction.BUY,
        TradeAction.BUY,
        TradeAction.BUY,
    ]
    # priorities: 274.50 >= 100 -> 3; the buys are all >= 1,000 -> 2
    assert [(i.symbol, i.priority) for i in plan.items] == [
        ("BIL", 3),
        ("QQQ", 2),  # within BUY priority 2: |trade| 4239.53 > 3065.88 > 2826.35
        ("SPY", 2),
        ("TLT", 2),
    ]
    assert items["BIL"].full_liquidation
    assert not any(items[s].full_liquidation for s in ("SPY", "QQQ", "TLT"))


def test_plan_when_worked_example_then_weights_relative_to_total_value() -> None:
    # SPY current 4000 / 14274.50 = 0.28021997267855... -> 0.280219972679
    # SPY target  0.5 x 0.99 = 0.495; diff 0.495 - 0.280219972679 = 0.214780027321
    # BIL current 274.50 / 14274.50 = 0.01923009562506... -> 0.019230095625; target 0
    # QQQ target 0.3 x 0.99 = 0.297, TLT 0.2 x 0.99 = 0.198, current 0
    items = _by_symbol(_worked_example())

    assert items["SPY"].current_weight == D("0.280219972679")
    assert items["SPY"].target_weight == D("0.495")
    assert items["SPY"].weight_diff == D("0.214780027321")
    assert items["BIL"].current_weight == D("0.019230095625")
    assert items["BIL"].target_weight == D("0")
    assert items["BIL"].weight_diff == D("-0.019230095625")
    assert (items["QQQ"].target_weight, items["QQQ"].current_weight) == (D("0.297"), D("0"))
    assert items["TLT"].weight_diff == D("0.198")


def test_plan_when_worked_example_then_money_in_cents_and_weights_to_12_places() -> None:
    plan = _worked_example()

    for item in plan.items:
        for amount in (item.current_value, item.target_value, item.trade_amount):
            assert amount.as_tuple().exponent == -2
        for weight in (item.current_weight, item.target_weight, item.weight_diff):
            assert weight.as_tuple().exponent == -12
        assert item.trade_amount == item.target_value - item.current_value


def test_plan_when_amount_is_exactly_half_a_cent_then_rounds_half_to_even() -> None:
    # value 1001.50, deployable 1001.50 x 0.99 = 991.485 exactly: half-even -> 991.48
    # (half-up would give 991.49)
    account = AccountSnapshot(cash=D("1001.50"), prices={"SPY": D("10")})

    plan = plan_rebalance({"SPY": D("1")}, account)

    assert plan.deployable_value == D("991.48")
    assert plan.items[0].target_value == D("991.48")


def test_plan_when_cash_reserve_configured_then_keeps_that_share_in_cash() -> None:
    # value 20000; reserve 5% -> deployable 19000; SPY 1.0 -> 19000 target, 1000 stays cash
    account = AccountSnapshot(cash=D("20000"), prices={"SPY": D("500")})

    plan = plan_rebalance({"SPY": D("1")}, account, PlannerConfig(cash_reserve_pct=D("0.05")))

    assert plan.deployable_value == D("19000.00")
    assert plan.items[0].trade_amount == D("19000.00")
    assert plan.items[0].target_weight == D("0.95")


def test_plan_when_default_config_then_reserve_is_one_percent() -> None:
    account = AccountSnapshot(cash=D("20000"), prices={"SPY": D("500")})

    plan = plan_rebalance({"SPY": D("1")}, account)

    assert plan.items[0].target_value == D("19800.00")  # 20000 x 0.99


def _one_symbol(cash: str, price: str, config: PlannerConfig = NO_RESERVE) -> PlanItem:
    """Without reserve and with target X = 1, the trade is exactly the cash (X held once)."""
    account = AccountSnapshot(cash=D(cash), positions={"X": Position(D("1"), D(price))})
    plan = plan_rebalance({"X": D("1")}, account, config)
    assert len(plan.items) == 1
    return plan.items[0]


@pytest.mark.parametrize(
    ("cash", "price", "action"),
    [
        ("5.00", "995.00", TradeAction.BUY),  # value 1000.00 -> minimum $5; 5.00 trades
        ("4.99", "995.01", TradeAction.HOLD),  # 4.99 < 5
        ("-5.00", "1005.00", TradeAction.SELL),  # a $5 sell trades too
        ("-4.99", "1004.99", TradeAction.HOLD),
        ("10.00", "989.99", TradeAction.BUY),  # value 999.99 -> minimum 9.9999; 10.00 trades
        ("9.99", "990.00", TradeAction.HOLD),  # 9.99 < 9.9999 although >= $5
        ("5.00", "994.99", TradeAction.HOLD),  # value 999.99: $5 is not enough under $1,000
        ("9.90", "980.10", TradeAction.BUY),  # value 990.00 -> minimum 9.90; equal trades
        ("9.89", "980.11", TradeAction.HOLD),
        ("-9.90", "999.90", TradeAction.SELL),  # value 990.00; a 9.90 sell trades
        ("-9.89", "999.89", TradeAction.HOLD),
    ],
)
def test_plan_when_trade_near_minimum_then_trades_only_at_or_above_it(
    cash: str, price: str, action: TradeAction
) -> None:
    item = _one_symbol(cash, price)

    assert item.trade_amount == D(cash)
    assert item.action is action


def test_plan_when_trade_below_minimum_then_hold_keeps_amount_and_is_not_totalled() -> None:
    account = AccountSnapshot(cash=D("4.99"), positions={"X": Position(D("1"), D("995.01"))})

    plan = plan_rebalance({"X": D("1")}, account, NO_RESERVE)

    assert plan.items[0].action is TradeAction.HOLD
    assert plan.items[0].trade_amount == D("4.99")
    assert plan.total_trade_value == D("0")


def test_plan_when_min_trade_configured_then_uses_configured_amount() -> None:
    config = PlannerConfig(cash_reserve_pct=D("0"), min_trade_amount=D("25"))

    assert _one_symbol("24.99", "10000", config).action is TradeAction.HOLD
    assert _one_symbol("25.00", "10000", config).action is TradeAction.BUY


@pytest.mark.parametrize(
    ("cash", "priority"),
    [
        ("10000.00", 1),
        ("9999.99", 2),
        ("1000.00", 2),
        ("999.99", 3),
        ("100.00", 3),
        ("99.99", 4),
        ("50.00", 4),
        ("49.99", 5),
        ("-10000.00", 1),
        ("-49.99", 5),
    ],
)
def test_plan_when_trade_at_priority_boundary_then_priority_by_size(
    cash: str, priority: int
) -> None:
    item = _one_symbol(cash, "20000")

    assert item.priority == priority


def test_plan_when_mixed_trades_then_sells_buys_holds_in_that_order() -> None:
    # value = 11898 + 100 x 100 + 10 x 10 + 1 x 3000 + 1 x 2.00 = 25000.00, no reserve
    # S1 untargeted: SELL -10000 (p1); S2 untargeted: SELL -100 (p3)
    # B1 0.5 -> 12500 BUY (p1); B2 0.38 -> 9500 BUY (p2); H 0.12 -> 3000, trade 0: HOLD
    # ZZ untargeted, -2.00 is under the $5 minimum: HOLD, |trade| 2 > 0 so before H
    account = AccountSnapshot(
        cash=D("11898"),
        positions={
            "S1": Position(D("100"), D("100")),
            "S2": Position(D("10"), D("10")),
            "H": Position(D("1"), D("3000")),
            "ZZ": Position(D("1"), D("2.00")),
        },
        prices={"B1": D("50"), "B2": D("25")},
    )
    targets = {"B2": D("0.38"), "H": D("0.12"), "B1": D("0.5")}

    plan = plan_rebalance(targets, account, NO_RESERVE)

    assert plan.total_portfolio_value == D("25000.00")
    assert [(i.symbol, i.action, i.trade_amount, i.priority) for i in plan.items] == [
        ("S1", TradeAction.SELL, D("-10000.00"), 1),
        ("S2", TradeAction.SELL, D("-100.00"), 3),
        ("B1", TradeAction.BUY, D("12500.00"), 1),
        ("B2", TradeAction.BUY, D("9500.00"), 2),
        ("ZZ", TradeAction.HOLD, D("-2.00"), 5),
        ("H", TradeAction.HOLD, D("0.00"), 5),
    ]
    assert [i.symbol for i in plan.sells] == ["S1", "S2"]
    assert [i.symbol for i in plan.buys] == ["B1", "B2"]
    assert [i.symbol for i in plan.holds] == ["ZZ", "H"]
    assert plan.total_trade_value == D("32100.00")  # 10000 + 100 + 12500 + 9500
    assert not _by_symbol(plan)["ZZ"].full_liquidation  # a HOLD closes nothing


@pytest.mark.parametrize("total", ["0.99", "1.01", "1", "0.990000", "1.0100"])
def test_plan_when_weights_sum_inside_bounds_then_accepted(total: str) -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"A": D("1"), "B": D("1")})

    plan = plan_rebalance({"A": D("0.5"), "B": D(total) - D("0.5")}, account)

    assert {i.symbol for i in plan.items} == {"A", "B"}


@pytest.mark.parametrize("total", ["0.989", "1.011", "0.98999999", "1.01000001", "2"])
def test_plan_when_weights_sum_outside_bounds_then_invalid_targets(total: str) -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"A": D("1"), "B": D("1")})

    with pytest.raises(InvalidTargetsError, match="sum to"):
        plan_rebalance({"A": D("0.5"), "B": D(total) - D("0.5")}, account)


def test_plan_when_a_weight_is_negative_then_invalid_targets() -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"A": D("1"), "B": D("1")})

    with pytest.raises(InvalidTargetsError, match="negative"):
        plan_rebalance({"A": D("1.1"), "B": D("-0.1")}, account)


@pytest.mark.parametrize("weight", [D("NaN"), D("Infinity"), 1.0, "1"])
def test_plan_when_weight_not_a_finite_decimal_then_invalid_targets(weight: object) -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"A": D("1")})

    with pytest.raises(InvalidTargetsError, match="finite Decimal"):
        plan_rebalance({"A": weight}, account)  # type: ignore[dict-item]


def test_plan_when_held_position_has_no_price_then_missing_price() -> None:
    account = AccountSnapshot(cash=D("1000"), positions={"SPY": Position(D("2"))})

    with pytest.raises(MissingPriceError, match="SPY"):
        plan_rebalance({"SPY": D("1")}, account)


def test_plan_when_held_untargeted_position_has_no_price_then_missing_price() -> None:
    account = AccountSnapshot(
        cash=D("1000"), positions={"OLD": Position(D("2"))}, prices={"SPY": D("10")}
    )

    with pytest.raises(MissingPriceError, match="OLD"):
        plan_rebalance({"SPY": D("1")}, account)


def test_plan_when_held_position_priced_only_in_prices_then_uses_that_price() -> None:
    account = AccountSnapshot(
        cash=D("0"), positions={"SPY": Position(D("2"))}, prices={"SPY": D("50.25")}
    )

    plan = plan_rebalance({"SPY": D("1")}, account, NO_RESERVE)

    assert plan.total_portfolio_value == D("100.50")
    assert plan.items[0].action is TradeAction.HOLD


def test_plan_when_target_symbol_has_no_price_then_missing_price() -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"SPY": D("10")})

    with pytest.raises(MissingPriceError, match="QQQ"):
        plan_rebalance({"SPY": D("0.5"), "QQQ": D("0.5")}, account)


def test_plan_when_zero_weight_target_unpriced_and_not_held_then_hold_item() -> None:
    account = AccountSnapshot(cash=D("1000"), prices={"SPY": D("10")})

    plan = plan_rebalance({"SPY": D("1"), "QQQ": D("0")}, account)

    qqq = _by_symbol(plan)["QQQ"]
    assert (qqq.action, qqq.trade_amount, qqq.full_liquidation) == (
        TradeAction.HOLD,
        D("0.00"),
        False,
    )


def test_plan_when_targeted_with_zero_weight_then_full_liquidation() -> None:
    account = AccountSnapshot(
        cash=D("1000"), positions={"TQQQ": Position(D("3.5"), D("60.10"))}, prices={"SPY": D("1")}
    )

    plan = plan_rebalance({"SPY": D("1"), "TQQQ": D("0")}, account)

    # 3.5 x 60.10 = 210.35 sold in full
    tqqq = _by_symbol(plan)["TQQQ"]
    assert (tqqq.action, tqqq.trade_amount, tqqq.full_liquidation) == (
        TradeAction.SELL,
        D("-210.35"),
        True,
    )


def test_plan_when_partial_sell_then_not_full_liquidation() -> None:
    account = AccountSnapshot(
        cash=D("0"),
        positions={"A": Position(D("10"), D("100")), "B": Position(D("10"), D("100"))},
    )

    plan = plan_rebalance({"A": D("0.25"), "B": D("0.75")}, account, NO_RESERVE)

    a = _by_symbol(plan)["A"]
    assert (a.action, a.trade_amount, a.full_liquidation) == (TradeAction.SELL, D("-500.00"), False)


def test_plan_when_targets_empty_then_liquidates_every_position() -> None:
    account = AccountSnapshot(
        cash=D("100"),
        positions={"A": Position(D("1"), D("300")), "B": Position(D("2"), D("25.50"))},
    )

    plan = plan_rebalance({}, account)

    assert [(i.symbol, i.action, i.trade_amount) for i in plan.items] == [
        ("A", TradeAction.SELL, D("-300.00")),
        ("B", TradeAction.SELL, D("-51.00")),
    ]
    assert all(i.full_liquidation for i in plan.items)
    assert plan.total_trade_value == D("351.00")


def test_plan_when_targets_empty_and_nothing_held_then_empty_plan() -> None:
    plan = plan_rebalance({}, AccountSnapshot(cash=D("500")))

    assert plan.items == ()
    assert plan.total_trade_value == D("0")
    assert plan.total_portfolio_value == D("500.00")


def test_plan_when_account_has_zero_value_then_all_hold_with_zero_amounts() -> None:
    account = AccountSnapshot(cash=D("0"), prices={"SPY": D("400")})

    plan = plan_rebalance({"SPY": D("1")}, account)

    (item,) = plan.items
    assert (item.action, item.trade_amount, item.target_value, item.current_weight) == (
        TradeAction.HOLD,
        D("0"),
        D("0"),
        D("0"),
    )
    assert item.target_weight == D("0.99")
    assert (plan.total_portfolio_value, plan.total_trade_value) == (D("0"), D("0"))


def test_plan_when_position_quantity_zero_then_ignored_unless_targeted() -> None:
    account = AccountSnapshot(cash=D("100"), positions={"GONE": Position(D("0"))})

    plan = plan_rebalance({}, account)

    assert plan.items == ()


def test_plan_when_account_value_negative_then_invalid_account() -> None:
    account = AccountSnapshot(cash=D("-500"), positions={"A": Position(D("1"), D("100"))})

    with pytest.raises(InvalidAccountError, match="negative"):
        plan_rebalance({"A": D("1")}, account)


def test_plan_when_fractional_quantity_then_value_exact_before_rounding() -> None:
    # 0.123456 x 401.37 = 49.3824 + 0.16913472 = 49.55153472 -> 49.55
    # value = 49.55153472 + 0.005 = 49.55653472 -> 49.56 (rounded once, from the exact sum)
    account = AccountSnapshot(
        cash=D("0.005"), positions={"SPY": Position(D("0.123456"), D("401.37"))}
    )

    plan = plan_rebalance({"SPY": D("1")}, account, NO_RESERVE)

    assert plan.items[0].current_value == D("49.55")
    assert plan.total_portfolio_value == D("49.56")
    # target 49.55653472 -> 49.56, trade 49.56 - 49.55 = 0.01 < 1% x 49.56 = 0.4956 -> HOLD
    assert plan.items[0].trade_amount == D("0.01")
    assert plan.items[0].action is TradeAction.HOLD


def test_plan_when_positive_weight_rounds_to_zero_target_then_full_liquidation() -> None:
    # value 100; B target 0.000001 x 99 = 0.000099 -> 0.00: the whole position goes
    account = AccountSnapshot(
        cash=D("50"), positions={"B": Position(D("1"), D("50"))}, prices={"A": D("1")}
    )

    plan = plan_rebalance({"A": D("0.999999"), "B": D("0.000001")}, account)

    b = _by_symbol(plan)["B"]
    assert (b.action, b.target_value, b.trade_amount, b.full_liquidation) == (
        TradeAction.SELL,
        D("0.00"),
        D("-50.00"),
        True,
    )


def test_plan_when_made_then_records_its_cash_reserve() -> None:
    account = AccountSnapshot(cash=D("100"), prices={"A": D("1")})

    plan = plan_rebalance({"A": D("1")}, account, PlannerConfig(cash_reserve_pct=D("0.025")))

    assert plan.cash_reserve_pct == D("0.025")
