"""Tests of ``alchemiser portfolio plan`` through typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

from alchemiser_common.events import payloads
from alchemiser_common.events.enums import PlanAction
from alchemiser_common.events.hashing import plan_hash
from alchemiser_portfolio.cli import app

ACCOUNT = {
    "cash": "10000.00",
    "positions": {
        "SPY": {"qty": "10", "price": "400.00"},
        "BIL": {"qty": "3", "price": "91.50"},
    },
    "prices": {"QQQ": "350.00", "TLT": "95.00"},
}
TARGETS = {"SPY": "0.5", "QQQ": "0.3", "TLT": "0.2"}


def _write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _run(tmp_path: Path, targets: Any, account: Any, *extra: str) -> Result:
    targets_file = _write(tmp_path / "targets.json", targets)
    account_file = _write(tmp_path / "account.json", account)
    args = ["plan", "--targets", str(targets_file), "--account", str(account_file), *extra]
    return CliRunner().invoke(app, args)


def test_plan_when_json_flag_then_prints_plan_in_execution_order(tmp_path: Path) -> None:
    # the worked example of test_planner: value 14274.50, deployable 14131.755
    result = _run(tmp_path, TARGETS, ACCOUNT, "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(i["symbol"], i["action"], i["trade_amount"]) for i in document["items"]] == [
        ("BIL", "SELL", "-274.50"),
        ("QQQ", "BUY", "4239.53"),
        ("SPY", "BUY", "3065.88"),
        ("TLT", "BUY", "2826.35"),
    ]
    spy = document["items"][2]
    assert spy == {
        "symbol": "SPY",
        "action": "BUY",
        "trade_amount": "3065.88",
        "target_value": "7065.88",
        "current_value": "4000.00",
        "current_weight": "0.280219972679",
        "target_weight": "0.495000000000",
        "weight_diff": "0.214780027321",
        "priority": 2,
        "full_liquidation": False,
    }
    assert document["items"][0]["full_liquidation"] is True
    assert document["total_portfolio_value"] == "14274.50"
    assert document["total_trade_value"] == "10406.26"
    assert document["deployable_value"] == "14131.76"


def test_plan_when_json_flag_then_plan_hash_is_shared_hash_with_nil_correlation(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, TARGETS, ACCOUNT, "--json")

    document = json.loads(result.stdout)
    expected_plan = payloads.RebalancePlan(
        plan_id="dry-run",
        items=[
            payloads.PlanItem(
                symbol=item["symbol"],
                action=PlanAction(item["action"]),
                current_weight=Decimal(item["current_weight"]),
                target_weight=Decimal(item["target_weight"]),
                weight_diff=Decimal(item["weight_diff"]),
                current_value=Decimal(item["current_value"]),
                target_value=Decimal(item["target_value"]),
                trade_amount=Decimal(item["trade_amount"]),
                priority=item["priority"],
            )
            for item in document["items"]
        ],
        total_portfolio_value=Decimal("14274.50"),
        total_trade_value=Decimal("10406.26"),
        cash_reserve_pct=Decimal("0.01"),
    )
    assert document["plan_hash"] == plan_hash(expected_plan, UUID(int=0))


def test_plan_when_same_values_written_differently_then_same_plan_hash(tmp_path: Path) -> None:
    first = json.loads(_run(tmp_path, TARGETS, ACCOUNT, "--json").stdout)
    reordered = {"prices": ACCOUNT["prices"], "positions": ACCOUNT["positions"], "cash": "10000"}
    second = json.loads(
        _run(tmp_path, {"TLT": "0.20", "QQQ": "0.3", "SPY": "0.50"}, reordered, "--json").stdout
    )
    changed = json.loads(_run(tmp_path, TARGETS, {**ACCOUNT, "cash": "10000.01"}, "--json").stdout)

    assert first["plan_hash"] == second["plan_hash"]
    assert first["plan_hash"] != changed["plan_hash"]


def test_plan_when_no_json_flag_then_prints_table_and_totals(tmp_path: Path) -> None:
    result = _run(tmp_path, TARGETS, ACCOUNT)

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["BIL", "QQQ", "SPY", "TLT"]
    bil = [cell.strip() for cell in rows[0].split("│")[1:-1]]
    assert bil == ["BIL", "SELL (close)", "-274.50", "0.00", "274.50", "3"]
    spy = [cell.strip() for cell in rows[2].split("│")[1:-1]]
    assert spy == ["SPY", "BUY", "3,065.88", "7,065.88", "4,000.00", "2"]
    assert "Total portfolio value: 14,274.50" in out
    assert "Total trade value:     10,406.26" in out
    plan_hash = json.loads(_run(tmp_path, TARGETS, ACCOUNT, "--json").stdout)["plan_hash"]
    assert f"Plan hash:             {plan_hash}" in out


def test_plan_when_integer_json_numbers_then_accepted(tmp_path: Path) -> None:
    account = {"cash": 1000, "positions": {"SPY": {"qty": 2, "price": "100"}}}

    result = _run(tmp_path, {"SPY": 1}, account, "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["total_portfolio_value"] == "1200.00"


def _assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("account", "fragments"),
    [
        ({**ACCOUNT, "cash": 10000.5}, ("account.json", "cash", '"10000.5"', "strings")),
        (
            {**ACCOUNT, "positions": {"SPY": {"qty": "10", "price": 400.25}}},
            ("account.json", "positions.SPY.price", "strings"),
        ),
        ({**ACCOUNT, "prices": {"QQQ": "abc"}}, ("account.json", "prices.QQQ", "not a decimal")),
        ({**ACCOUNT, "prices": {"QQQ": True}}, ("account.json", "prices.QQQ", "decimal string")),
        ({**ACCOUNT, "prices": {"QQQ": "NaN"}}, ("account.json", "prices.QQQ", "finite")),
        ({**ACCOUNT, "cash": None}, ("account.json", "cash", "decimal string")),
        ({"positions": {}}, ("account.json", "cash", "missing")),
        ({**ACCOUNT, "casj": "1"}, ("account.json", "unknown key", "casj")),
        (
            {**ACCOUNT, "positions": {"SPY": {"quantity": "10"}}},
            ("account.json", "positions.SPY", "quantity"),
        ),
        ({**ACCOUNT, "positions": {"SPY": {"qty": "-1"}}}, ("account.json", "negative")),
        ([1, 2], ("account.json", "expected a JSON object")),
        ({**ACCOUNT, "prices": {"qqq": "1"}}, ("account.json", "prices.qqq", "symbol")),
        ({"cash": "1", "positions": {"": {"qty": "1"}}}, ("account.json", "positions.", "symbol")),
        ('{"cash": ', ("account.json", "not valid JSON")),
        ('{"cash": NaN}', ("account.json", "not valid JSON")),
        ('{"cash": "1", "cash": "2"}', ("account.json", "duplicate key 'cash'")),
    ],
)
def test_plan_when_account_file_malformed_then_exit_2_naming_file_and_key(
    tmp_path: Path, account: Any, fragments: tuple[str, ...]
) -> None:
    _assert_one_line_error(_run(tmp_path, TARGETS, account), *fragments)


def test_plan_when_target_weight_is_float_then_exit_2_naming_symbol(tmp_path: Path) -> None:
    result = _run(tmp_path, {"SPY": 0.5, "QQQ": "0.5"}, ACCOUNT)

    _assert_one_line_error(result, "targets.json", "SPY", '"0.5"')


def test_plan_when_weights_do_not_sum_to_one_then_exit_2_naming_targets(tmp_path: Path) -> None:
    result = _run(tmp_path, {"SPY": "0.5", "QQQ": "0.3"}, ACCOUNT)

    _assert_one_line_error(result, "targets.json", "sum to 0.8")


def test_plan_when_held_position_unpriced_then_exit_2_naming_account(tmp_path: Path) -> None:
    account = {"cash": "100", "positions": {"SPY": {"qty": "1", "price": None}}}

    result = _run(tmp_path, {"SPY": "1"}, account)

    _assert_one_line_error(result, "account.json", "SPY", "no price")


def test_plan_when_target_unpriced_then_exit_2_naming_symbol(tmp_path: Path) -> None:
    result = _run(tmp_path, {"SPY": "0.5", "XLK": "0.5"}, ACCOUNT)

    _assert_one_line_error(result, "XLK", "no price")


def test_plan_when_file_missing_then_exit_2_naming_file(tmp_path: Path) -> None:
    account_file = _write(tmp_path / "account.json", ACCOUNT)
    missing = tmp_path / "nope.json"
    args = ["plan", "--targets", str(missing), "--account", str(account_file)]

    result = CliRunner().invoke(app, args)

    _assert_one_line_error(result, "nope.json", "cannot read")


def test_plan_when_amounts_inexact_in_binary_then_exact_decimal_results(tmp_path: Path) -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; as decimal strings the sum is exact
    account = {"cash": "0.30", "prices": {"A": "1", "B": "1"}}

    result = _run(tmp_path, {"A": "0.1", "B": "0.9"}, account, "--json")

    items = {i["symbol"]: i for i in json.loads(result.stdout)["items"]}
    assert Decimal(items["A"]["target_weight"]) == Decimal("0.099")
    assert items["B"]["target_value"] == "0.27"  # 0.9 x 0.297 = 0.2673 -> 0.27


def test_plan_when_target_symbol_lower_case_then_exit_2_naming_symbol(tmp_path: Path) -> None:
    result = _run(tmp_path, {"spy": "1"}, ACCOUNT)

    _assert_one_line_error(result, "targets.json", "spy", "not a valid symbol")


def test_plan_when_amount_beyond_event_precision_then_exit_2(tmp_path: Path) -> None:
    # 10^23 has 24 digits: the planner handles it, the event's Money (28 digits, 6 of them
    # after the point) cannot hold it
    account = {"cash": "100000000000000000000000", "prices": {"SPY": "1"}}

    result = _run(tmp_path, {"SPY": "1"}, account)

    _assert_one_line_error(result, "cannot be expressed as an event")


def test_plan_when_targets_empty_then_liquidation_refused_without_the_flag(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, ACCOUNT, "--json")

    _assert_one_line_error(result, "targets.json", "sell every position", "--allow-liquidation")


def test_plan_when_targets_empty_and_allow_liquidation_then_every_position_sold(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, {}, ACCOUNT, "--json", "--allow-liquidation")

    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert {(i["symbol"], i["action"], i["full_liquidation"]) for i in items} == {
        ("SPY", "SELL", True),
        ("BIL", "SELL", True),
    }


def test_plan_when_targets_empty_and_nothing_held_then_empty_plan_without_the_flag(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, {}, {"cash": "1000"}, "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["items"] == []


REPOSITORY = Path(__file__).resolve().parents[3]


def test_plan_when_shipped_examples_then_the_documented_command_works() -> None:
    # the README's command, from the repository root, through the `alchemiser` entry point
    command = [sys.executable, "-m", "alchemiser_common.cli", "portfolio", "plan"]
    files = ["--targets", "examples/targets.json", "--account", "examples/account.json"]

    result = subprocess.run(
        [*command, *files, "--json"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {item["symbol"] for item in document["items"]} == {"BIL", "QQQ", "SPY", "TLT"}
    assert document["total_portfolio_value"] == "14274.50"
