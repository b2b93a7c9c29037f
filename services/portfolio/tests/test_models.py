"""Unit tests of the value types, the ordering key, the report and the snapshot id."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from alchemiser_portfolio.domain import (
    AccountSnapshot,
    AllocationRow,
    PlanItem,
    PlannerConfig,
    Position,
    TradeAction,
    account_snapshot_id,
    allocation_comparison,
    canonical_account_json,
    canonical_decimal,
    execution_order_key,
    trade_priority,
)
from alchemiser_portfolio.exceptions import (
    InvalidAccountError,
    InvalidPlannerConfigError,
    MissingPriceError,
)

D = Decimal


@pytest.mark.parametrize(
    ("amount", "priority"),
    [
        ("10000", 1),
        ("9999.99", 2),
        ("1000", 2),
        ("999.99", 3),
        ("100", 3),
        ("99.99", 4),
        ("50", 4),
        ("49.99", 5),
        ("0", 5),
        ("-1000", 2),
    ],
)
def test_trade_priority_when_at_boundary_then_expected_priority(amount: str, priority: int) -> None:
    assert trade_priority(D(amount)) == priority


def _item(symbol: str, action: TradeAction, trade: str) -> PlanItem:
    amount = D(trade)
    return PlanItem(
        symbol=symbol,
        action=action,
        current_weight=D("0"),
        target_weight=D("0"),
        weight_diff=D("0"),
        current_value=D("0"),
        target_value=amount,
        trade_amount=amount,
        priority=trade_priority(amount),
    )


def test_execution_order_key_when_sorting_then_action_priority_size_symbol() -> None:
    items = [
        _item("H1", TradeAction.HOLD, "3"),
        _item("B2", TradeAction.BUY, "150"),
        _item("B1", TradeAction.BUY, "20000"),
        _item("S3", TradeAction.SELL, "-120"),
        _item("S2", TradeAction.SELL, "-900"),  # same priority 3 as S3, larger first
        _item("S1", TradeAction.SELL, "-60"),
        _item("BB", TradeAction.BUY, "150"),  # ties B2 on priority and size: by symbol
    ]

    ordered = [item.symbol for item in sorted(items, key=execution_order_key)]

    assert ordered == ["S2", "S3", "S1", "B1", "B2", "BB", "H1"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cash_reserve_pct": D("1")},
        {"cash_reserve_pct": D("-0.01")},
        {"min_trade_amount": D("-5")},
        {"small_account_min_trade_pct": D("1.5")},
        {"weight_sum_min": D("1.02")},
        {"cash_reserve_pct": D("NaN")},
        {"cash_reserve_pct": 0.01},
    ],
)
def test_planner_config_when_out_of_range_then_invalid_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidPlannerConfigError):
        PlannerConfig(**kwargs)  # type: ignore[arg-type]


def test_planner_config_when_defaults_then_original_rules() -> None:
    config = PlannerConfig()

    assert config.cash_reserve_pct == D("0.01")
    assert (config.weight_sum_min, config.weight_sum_max) == (D("0.99"), D("1.01"))
    assert config.minimum_trade(D("999.99")) == D("9.9999")
    assert config.minimum_trade(D("1000.00")) == D("5")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Position(qty=D("-1"), price=D("10")),
        lambda: Position(qty=D("1"), price=D("0")),
        lambda: Position(qty=1.5),  # type: ignore[arg-type]
        lambda: AccountSnapshot(cash=D("Infinity")),
        lambda: AccountSnapshot(cash=100.0),  # type: ignore[arg-type]
        lambda: AccountSnapshot(cash=D("1"), prices={"SPY": D("-1")}),
        lambda: AccountSnapshot(cash=D("1"), prices={" SPY": D("1")}),
        lambda: AccountSnapshot(cash=D("1"), positions={"SPY": D("1")}),  # type: ignore[dict-item]
    ],
)
def test_account_snapshot_when_malformed_then_invalid_account(build: object) -> None:
    with pytest.raises(InvalidAccountError):
        build()  # type: ignore[operator]


def test_account_snapshot_when_source_dict_mutated_then_snapshot_unchanged() -> None:
    prices = {"SPY": D("10")}
    account = AccountSnapshot(cash=D("1"), prices=prices)

    prices["QQQ"] = D("5")

    assert dict(account.prices) == {"SPY": D("10")}
    with pytest.raises(TypeError):
        account.prices["X"] = D("1")  # type: ignore[index]


def test_allocation_comparison_when_called_then_rows_by_symbol_with_diff() -> None:
    # value = 500 + 10 x 50 = 1000; SPY current 500/1000 = 0.5; BIL untargeted 0
    account = AccountSnapshot(
        cash=D("500"), positions={"SPY": Position(D("10"), D("50"))}, prices={"QQQ": D("1")}
    )

    rows = allocation_comparison({"SPY": D("0.6"), "QQQ": D("0.4")}, account)

    assert rows == [
        AllocationRow("QQQ", D("0.4"), D("0"), D("0.4")),
        AllocationRow("SPY", D("0.6"), D("0.5"), D("0.1")),
    ]
    assert all(row.diff.as_tuple().exponent == -12 for row in rows)


def test_allocation_comparison_when_held_position_unpriced_then_missing_price() -> None:
    account = AccountSnapshot(cash=D("1"), positions={"SPY": Position(D("1"))})

    with pytest.raises(MissingPriceError):
        allocation_comparison({"SPY": D("1")}, account)


@pytest.mark.parametrize(
    ("value", "text"),
    [("100.00", "100"), ("1E+2", "100"), ("0.500", "0.5"), ("-0.00", "0"), ("12.3400", "12.34")],
)
def test_canonical_decimal_when_equal_values_then_same_text(value: str, text: str) -> None:
    assert canonical_decimal(D(value)) == text


def test_account_snapshot_id_when_equal_values_then_same_id() -> None:
    first = AccountSnapshot(
        cash=D("100.00"),
        positions={"A": Position(D("1.50"), D("10.0")), "B": Position(D("2"))},
        prices={"C": D("5.00"), "D": D("7")},
    )
    second = AccountSnapshot(
        cash=D("100"),
        positions={"B": Position(D("2.0")), "A": Position(D("1.5"), D("10"))},
        prices={"D": D("7.0"), "C": D("5")},
    )

    assert account_snapshot_id(first) == account_snapshot_id(second)


def test_account_snapshot_id_when_computed_then_sha256_of_canonical_json() -> None:
    account = AccountSnapshot(
        cash=D("100.50"), positions={"A": Position(D("2"), D("10.00"))}, prices={"B": D("3")}
    )
    expected_text = (
        '{"cash":"100.5","positions":{"A":{"price":"10","qty":"2"}},'
        '"prices":{"B":"3"},"version":"account-snapshot/v1"}'
    )

    assert canonical_account_json(account) == expected_text
    assert account_snapshot_id(account) == hashlib.sha256(expected_text.encode()).hexdigest()


@pytest.mark.parametrize(
    "changed",
    [
        AccountSnapshot(cash=D("100.51"), positions={"A": Position(D("2"), D("10"))}),
        AccountSnapshot(cash=D("100.50"), positions={"A": Position(D("3"), D("10"))}),
        AccountSnapshot(cash=D("100.50"), positions={"A": Position(D("2"))}),
        AccountSnapshot(
            cash=D("100.50"), positions={"A": Position(D("2"), D("10"))}, prices={"B": D("1")}
        ),
    ],
)
def test_account_snapshot_id_when_any_value_differs_then_id_differs(
    changed: AccountSnapshot,
) -> None:
    base = AccountSnapshot(cash=D("100.50"), positions={"A": Position(D("2"), D("10"))})

    assert account_snapshot_id(changed) != account_snapshot_id(base)
