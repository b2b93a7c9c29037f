"""``alchemiser strategy eval`` and ``indicator`` through Typer's CliRunner."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.cli import app
from alchemiser_strategy.domain import INDICATORS
from alchemiser_strategy.settings import BUNDLED_STRATEGIES_DIR

DATA = str(DEMO_DATASET_DIR)
FILES = [
    str(BUNDLED_STRATEGIES_DIR / f"{name}.clj") for name in ("klm", "nuclear", "tecl", "tqqq_ftlt")
]
runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_when_four_files_then_each_trace_allocation_and_consolidated_portfolio() -> None:
    code, out, err = _invoke("eval", *FILES, "--data", DATA, "--as-of", "2008-10-10")

    assert (code, err) == (0, "")
    for path in FILES:
        assert f"== {path} " in out
    # on 2008-10-10 TQQQ's RSI(10) is below 30: KLM's pop rule decides TECL
    assert 'klm.clj:34:28: (< (rsi "TQQQ" {:window 10}) 30) with 20.9293 vs 30.0000 -> true' in out
    consolidated = out.split("consolidated portfolio as of 2008-10-10")[1].splitlines()[1:]
    weights = {line.split()[0]: Decimal(line.split()[1]) for line in consolidated}
    assert weights == {"TECL": Decimal("0.75"), "TQQQ": Decimal("0.25")}


def test_eval_when_json_and_weights_then_document_matches_the_weights() -> None:
    code, out, _err = _invoke(
        "eval",
        *FILES,
        "--data",
        DATA,
        "--as-of",
        "2015-06-15",
        "--json",
        "--weights",
        "klm=0.2,nuclear=0.15,tecl=0.5,tqqq_ftlt=0.15",
    )

    assert code == 0
    document = json.loads(out)
    assert document["as_of"] == "2015-06-15"
    effective = {
        Path(s["file"]).stem: Decimal(s["effective_weight"]) for s in document["strategies"]
    }
    assert effective == {
        "klm": Decimal("0.2"),
        "nuclear": Decimal("0.15"),
        "tecl": Decimal("0.5"),
        "tqqq_ftlt": Decimal("0.15"),
    }
    consolidated = {k: Decimal(v) for k, v in document["consolidated_portfolio"].items()}
    assert sum(consolidated.values()) == Decimal(1)
    expected: dict[str, Decimal] = {}
    for strategy in document["strategies"]:
        for symbol, weight in strategy["allocation"].items():
            share = Decimal(strategy["effective_weight"]) * Decimal(weight)
            expected[symbol] = expected.get(symbol, Decimal(0)) + share
            assert strategy["reasons"][symbol]
    assert {
        s: abs(w - expected[s]) < Decimal("1E-11") for s, w in consolidated.items()
    } == dict.fromkeys(expected, True)


def test_eval_when_as_of_omitted_then_newest_date_of_the_data() -> None:
    code, out, _err = _invoke("eval", FILES[0], "--data", DATA, "--json")

    assert code == 0
    assert json.loads(out)["as_of"] == "2018-12-31"


def test_eval_when_syntax_error_then_one_line_with_file_line_col_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.clj"
    bad.write_text('(defsymphony "b" {}\n  (bogus "SPY"))')

    code, out, err = _invoke("eval", FILES[0], str(bad), "--data", DATA, "--as-of", "2015-06-15")

    assert (code, out) == (2, "")
    assert err.startswith(f"error: {bad}:2:4: unknown operator 'bogus' (portfolio nodes: asset,")
    assert err.count("\n") == 1


@pytest.mark.parametrize("as_of", ["2015-13-01", "yesterday", "15/06/2015"])
def test_eval_when_bad_date_then_one_line_and_exit_2(as_of: str) -> None:
    code, _out, err = _invoke("eval", FILES[0], "--data", DATA, "--as-of", as_of)

    assert code == 2
    assert err == f"error: --as-of {as_of!r} is not a date (YYYY-MM-DD)\n"


def test_eval_when_symbol_missing_from_data_then_one_line_and_exit_2(tmp_path: Path) -> None:
    strategy = tmp_path / "odd.clj"
    strategy.write_text('(defsymphony "o" {} (weight-equal [(asset "SPY") (asset "ZZZZ")]))')

    code, _out, err = _invoke("eval", str(strategy), "--data", DATA, "--as-of", "2015-06-15")

    assert code == 2
    assert err == "error: market data missing on 2015-06-15 for 1 of 2 symbols: ZZZZ\n"


def test_eval_when_weights_do_not_name_every_file_then_exit_2() -> None:
    code, _out, err = _invoke("eval", *FILES[:2], "--data", DATA, "--weights", "klm=1")

    assert code == 2
    assert "missing ['nuclear']" in err
    assert err.count("\n") == 1


def test_indicator_when_csv_then_every_date_with_empty_warm_up_values() -> None:
    code, out, _err = _invoke(
        "indicator", "--data", DATA, "--symbol", "SPY", "--name", "rsi", "--window", "10", "--csv"
    )

    assert code == 0
    lines = out.splitlines()
    history = DatasetMarketData(DEMO_DATASET_DIR).history("SPY")
    assert history is not None
    assert lines[0] == "date,value"
    assert len(lines) == len(history) + 1
    assert lines[1:11] == [f"{day.isoformat()}," for day in history.days[:10]]
    values = np.array([float(line.split(",")[1] or "nan") for line in lines[1:]])
    expected = INDICATORS["rsi"].function(history.closes, 10)
    np.testing.assert_array_equal(values, np.round(expected, 4))  # rounded to 4 decimals
    assert not math.isnan(values[10])
    assert all(len(line.split(",")[1].partition(".")[2]) == 4 for line in lines[11:])


def test_indicator_when_unknown_name_then_one_line_and_exit_2() -> None:
    code, _out, err = _invoke(
        "indicator", "--data", DATA, "--symbol", "SPY", "--name", "macd", "--window", "3"
    )

    assert code == 2
    assert err.startswith("error: unknown indicator 'macd' (known: ")
    assert err.count("\n") == 1


def test_indicator_when_symbol_missing_then_one_line_and_exit_2() -> None:
    code, _out, err = _invoke(
        "indicator", "--data", DATA, "--symbol", "ZZZZ", "--name", "rsi", "--window", "3"
    )

    assert code == 2
    assert err == f"error: symbol 'ZZZZ' is not in the dataset {DATA}\n"


def test_indicator_when_window_missing_for_windowed_indicator_then_exit_2() -> None:
    code, _out, err = _invoke("indicator", "--data", DATA, "--symbol", "SPY", "--name", "rsi")

    assert code == 2
    assert err == "error: indicator 'rsi' needs --window N with N >= 1\n"


def test_indicator_when_data_dir_missing_then_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    code, _out, err = _invoke(
        "indicator", "--data", str(missing), "--symbol", "SPY", "--name", "current-price"
    )

    assert code == 2
    assert err == f"error: {missing}: not a directory\n"


def test_check_when_directory_has_good_and_bad_files_then_every_problem_and_exit_1(
    tmp_path: Path,
) -> None:
    (tmp_path / "good.clj").write_text('(defsymphony "g" {} (asset "SPY"))')
    (tmp_path / "bare.clj").write_text('(if (= (current-price "SPY") 1) (asset "A") (asset "B"))')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "typo.clj").write_text('(defsymphony "t" {} (asset "A" "a" "b"))')
    (tmp_path / "unclosed.clj").write_text('(defsymphony "u" {} [(asset "A")')
    (tmp_path / "notes.txt").write_text("not a strategy")

    code, out, err = _invoke("check", str(tmp_path))

    assert code == 1
    assert f"ok     {tmp_path / 'good.clj'} ('g'" in out
    assert f"ok     {tmp_path / 'bare.clj'} ('bare'" in out
    assert err.splitlines() == [
        f"error: {tmp_path / 'sub' / 'typo.clj'}:1:22: asset takes a symbol and an optional "
        "name, got 3 arguments",
        f"error: {tmp_path / 'unclosed.clj'}:1:21: unclosed '[' (reached the end of the file)",
    ]
    assert out.splitlines()[-1] == "4 files: 2 compiled, 2 failed"


def test_check_when_bundled_strategies_then_all_compile_and_exit_0() -> None:
    code, out, err = _invoke("check", str(BUNDLED_STRATEGIES_DIR))

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "4 files: 4 compiled, 0 failed"


def test_check_when_not_a_directory_then_exit_2(tmp_path: Path) -> None:
    code, _out, err = _invoke("check", str(tmp_path / "none"))

    assert code == 2
    assert err == f"error: {tmp_path / 'none'}: not a directory\n"


def test_indicator_when_ppo_then_short_and_long_windows_are_used() -> None:
    code, out, _err = _invoke(
        "indicator", "--data", DATA, "--symbol", "SPY", "--name", "percentage-price-oscillator",
        "--short-window", "12", "--long-window", "26", "--csv",
    )  # fmt: skip

    assert code == 0
    history = DatasetMarketData(DEMO_DATASET_DIR).history("SPY")
    assert history is not None
    expected = INDICATORS["percentage-price-oscillator"].compute(history.closes, (12, 26))
    last = out.strip().splitlines()[-1].split(",")
    assert float(last[1]) == round(float(expected[-1]), 4)


def _rsi_10(*extra: str) -> tuple[int, str, str]:
    return _invoke(
        "indicator", "--data", DATA, "--symbol", "SPY", "--name", "rsi", "--window", "10", *extra
    )


def test_indicator_when_from_and_to_then_only_those_dates_with_the_full_history_warm_up() -> None:
    code, out, err = _rsi_10("--from", "2018-06-01", "--to", "2018-06-08")

    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["date", "rsi(10)"]
    history = DatasetMarketData(DEMO_DATASET_DIR).history("SPY")
    assert history is not None
    expected = dict(zip(history.days, INDICATORS["rsi"].function(history.closes, 10), strict=True))
    days = [day for day in history.days if "2018-06-01" <= day.isoformat() <= "2018-06-08"]
    assert [row.split()[0] for row in rows] == [day.isoformat() for day in days]
    # computed over the whole history (no second warm-up), then rounded
    assert [row.split()[1] for row in rows] == [f"{expected[day]:.4f}" for day in days]


def test_indicator_when_as_of_and_json_then_one_document_with_the_last_value_before() -> None:
    code, out, err = _rsi_10("--as-of", "2018-06-16", "--json", "--digits", "2")  # a Saturday

    assert (code, err) == (0, "")
    document = json.loads(out)
    history = DatasetMarketData(DEMO_DATASET_DIR).history("SPY")
    assert history is not None
    friday = history.days.index(date(2018, 6, 15))
    expected = INDICATORS["rsi"].function(history.closes, 10)[friday]
    assert document == {
        "symbol": "SPY",
        "indicator": "rsi",
        "parameters": {"window": 10},
        "digits": 2,
        "values": [{"date": "2018-06-15", "value": round(float(expected), 2)}],
    }


def _day_of_spy(bars: int) -> str:
    history = DatasetMarketData(DEMO_DATASET_DIR).history("SPY")
    assert history is not None
    return history.days[bars - 1].isoformat()


def test_indicator_when_json_then_warm_up_values_are_null() -> None:
    code, out, _err = _rsi_10("--json", "--to", _day_of_spy(11))

    assert code == 0
    values = [row["value"] for row in json.loads(out)["values"]]
    assert values[:10] == [None] * 10
    assert isinstance(values[10], float)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--from", "2018-06-08", "--to", "2018-06-01"), "--from 2018-06-08 is after --to"),
        (("--as-of", "2018-06-15", "--to", "2018-06-15"), "give --as-of or --to, not both"),
        (("--from", "2030-01-01"), "no bar of SPY from 2030-01-01 to the last date"),
        (("--as-of", "1990-01-01"), "no bar of SPY on or before 1990-01-01"),
        (("--to", "2018-13-01"), "--to '2018-13-01' is not a date"),
        (("--csv", "--json"), "give --csv or --json, not both"),
    ],
)
def test_indicator_when_dates_or_formats_conflict_then_one_line_and_exit_2(
    extra: tuple[str, ...], message: str
) -> None:
    code, out, err = _rsi_10(*extra)

    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1


def test_eval_when_no_files_then_the_services_strategies_and_weights() -> None:
    code, out, _err = _invoke("eval", "--as-of", "2018-06-15", "--json")
    explicit_code, explicit, _ = _invoke(
        "eval",
        *FILES,
        "--data",
        DATA,
        "--as-of",
        "2018-06-15",
        "--json",
        "--weights",
        "klm=0.20,nuclear=0.15,tecl=0.50,tqqq_ftlt=0.15",
    )

    assert code == explicit_code == 0
    document, expected = json.loads(out), json.loads(explicit)
    weights = {Path(e["file"]).stem: e["configured_weight"] for e in document["strategies"]}
    assert weights == {"klm": "0.20", "nuclear": "0.15", "tecl": "0.50", "tqqq_ftlt": "0.15"}
    assert document["consolidated_portfolio"] == expected["consolidated_portfolio"]


def test_eval_when_strategies_dir_given_then_its_strategies_toml(tmp_path: Path) -> None:
    (tmp_path / "klm.clj").write_text((BUNDLED_STRATEGIES_DIR / "klm.clj").read_text())
    (tmp_path / "strategies.toml").write_text('[weights]\nklm = "1"\n')

    code, out, _err = _invoke("eval", "--strategies-dir", str(tmp_path), "--json")

    assert code == 0
    assert [Path(e["file"]).stem for e in json.loads(out)["strategies"]] == ["klm"]
