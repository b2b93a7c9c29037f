"""Nuclear: constructed prices force every branch; checks the deciding step and weights."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_strategy.domain.allocation import Allocation, ConditionTrace, RankingTrace
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.indicators import stdev_return
from alchemiser_strategy.domain.sample_prices import PathSet

FILE = Path(__file__).parents[2] / "strategies" / "nuclear.clj"
STRATEGY = load_strategy(FILE.read_text(encoding="utf-8"), "nuclear.clj")
HEDGE = {"BTAL": Decimal("0.25"), "UVXY": Decimal("0.75")}
UVXY = {"UVXY": Decimal(1)}
NUCLEAR = ["SMR", "BWXT", "LEU", "EXC", "NLR", "OKLO"]


def _paths() -> PathSet:
    return PathSet(STRATEGY.symbols)


def _bear() -> PathSet:
    return _paths().trend("SPY", 160, 100)


def _run(paths: PathSet) -> Allocation:
    return evaluate(STRATEGY, paths.market())


def _conditions(allocation: Allocation) -> list[tuple[str, bool]]:
    return [(e.expression, e.result) for e in allocation.trace if isinstance(e, ConditionTrace)]


def _gt(symbol: str, threshold: int, window: int = 10) -> str:
    return f'(> (rsi "{symbol}" {{:window {window}}}) {threshold})'


# -- overbought guard: the first of SPY, IOO, TQQQ, VTV, XLF above 79 decides ----------------

CHAIN = ["SPY", "IOO", "TQQQ", "VTV", "XLF"]


@pytest.mark.parametrize(
    ("guard", "hot"),
    [(guard, hot) for i, guard in enumerate(CHAIN) for hot in CHAIN[i:]],
)
def test_nuclear_when_guard_symbol_above_79_and_a_later_one_above_81_then_uvxy(
    guard: str, hot: str
) -> None:
    paths = _paths().rsi(guard, 80)
    paths.rsi(hot, 85)

    allocation = _run(paths)

    checks = _conditions(allocation)
    assert (_gt(guard, 79), True) in checks
    assert checks[-1] == (_gt(hot, 81), True)
    assert dict(allocation.weights) == UVXY


@pytest.mark.parametrize("guard", CHAIN)
def test_nuclear_when_guard_symbol_between_79_and_81_and_no_later_one_hot_then_hedge(
    guard: str,
) -> None:
    allocation = _run(_paths().rsi(guard, 80))

    checks = _conditions(allocation)
    later = CHAIN[CHAIN.index(guard) :]
    assert checks[-len(later) :] == [(_gt(symbol, 81), False) for symbol in later]
    assert dict(allocation.weights) == HEDGE


def test_nuclear_when_guard_is_ioo_then_spy_above_81_is_not_consulted() -> None:
    # SPY at 79 exactly is not overbought; IOO decides and only looks at IOO, TQQQ, VTV, XLF.
    allocation = _run(_paths().rsi("SPY", 78.9).rsi("IOO", 80))

    assert _gt("SPY", 81) not in dict(_conditions(allocation))
    assert dict(allocation.weights) == HEDGE


def test_nuclear_when_only_vox_above_79_then_hedge_since_xlf_is_not_above_81() -> None:
    allocation = _run(_paths().rsi("VOX", 80))

    assert _conditions(allocation)[-2:] == [(_gt("VOX", 79), True), (_gt("XLF", 81), False)]
    assert dict(allocation.weights) == HEDGE


# -- oversold -----------------------------------------------------------------------------------


def test_nuclear_when_tqqq_oversold_then_tqqq() -> None:
    allocation = _run(_paths().rsi("TQQQ", 25))

    assert _conditions(allocation)[-1] == ('(< (rsi "TQQQ" {:window 10}) 30)', True)
    assert dict(allocation.weights) == {"TQQQ": Decimal(1)}


def test_nuclear_when_spy_oversold_then_upro() -> None:
    allocation = _run(_paths().rsi("SPY", 25))

    assert _conditions(allocation)[-1] == ('(< (rsi "SPY" {:window 10}) 30)', True)
    assert dict(allocation.weights) == {"UPRO": Decimal(1)}


# -- bull: top 3 nuclear names by 90-day average return ----------------------------------------


def test_nuclear_when_spy_above_sma200_then_top_three_by_90_day_average_return() -> None:
    paths = _paths().trend("SPY", 60, 100)
    for symbol, end in zip(NUCLEAR, [130, 90, 150, 100, 120, 80], strict=True):
        paths.trend(symbol, 100, end)

    allocation = _run(paths)

    assert _conditions(allocation)[-1][1] is True
    ranking = allocation.trace[-1]
    assert isinstance(ranking, RankingTrace)
    assert ranking.method == "(filter (moving-average-return {:window 90}) (select-top 3))"
    assert [label for label, _ in ranking.scores] == ["LEU", "SMR", "NLR", "EXC", "BWXT", "OKLO"]
    third = Decimal("0.33333333")
    assert dict(allocation.weights) == {
        "LEU": third + Decimal("0.00000001"),
        "NLR": third,
        "SMR": third,
    }


def test_nuclear_when_nuclear_names_tie_then_alphabetical_top_three() -> None:
    allocation = _run(_paths().trend("SPY", 60, 100))

    assert set(allocation.weights) == {"BWXT", "EXC", "LEU"}


# -- bear: two sub-strategies weighted by inverse volatility -----------------------------------


def test_nuclear_when_bear_and_psq_oversold_then_both_bears_buy_sqqq() -> None:
    allocation = _run(_bear().rsi("PSQ", 30))

    checks = _conditions(allocation)
    assert checks[-1] == ('(< (rsi "PSQ" {:window 10}) 35)', True)
    assert any(isinstance(e, RankingTrace) for e in allocation.trace)
    assert dict(allocation.weights) == {"SQQQ": Decimal(1)}


@pytest.mark.parametrize(("tlt_end", "expected"), [(130, "TQQQ"), (100, "SQQQ")])
def test_nuclear_when_bear_and_tqqq_above_sma20_then_tlt_against_psq_decides(
    tlt_end: float, expected: str
) -> None:
    paths = _bear().rsi("TQQQ", 60).trend("TLT", 100, tlt_end)

    allocation = _run(paths)

    checks = _conditions(allocation)
    assert ('(> (current-price "TQQQ") (moving-average-price "TQQQ" {:window 20}))', True) in checks
    assert checks[-1] == (
        '(> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))',
        expected == "TQQQ",
    )
    assert dict(allocation.weights) == {expected: Decimal(1)}


IEF_RULE = '(> (rsi "IEF" {:window 10}) (rsi "PSQ" {:window 20}))'
TLT_RULE = '(> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))'


def test_nuclear_when_bear_and_ief_beats_psq_then_bear1_sqqq_and_bear2_skips_the_ief_rule() -> None:
    allocation = _run(_bear().rsi("TQQQ", 40).rsi("IEF", 70))

    checks = _conditions(allocation)
    # Bear 1 stops at its IEF rule; Bear 2 has no IEF rule and goes straight to TLT vs PSQ.
    assert checks.count((IEF_RULE, True)) == 1
    assert checks[-1] == (TLT_RULE, False)
    assert dict(allocation.weights) == {"SQQQ": Decimal(1)}


def test_nuclear_when_bear_ief_strong_and_tlt_strong_then_bear1_sqqq_and_bear2_qqq() -> None:
    allocation = _run(_bear().rsi("TQQQ", 40).rsi("IEF", 70).trend("TLT", 100, 130))

    checks = _conditions(allocation)
    assert (IEF_RULE, True) in checks
    assert checks[-1] == (TLT_RULE, True)
    assert set(allocation.weights) == {"QQQ", "SQQQ"}
    assert sum(allocation.weights.values()) == Decimal(1)


def test_nuclear_file_when_compiled_then_ief_rule_appears_only_in_bear_1() -> None:
    text = FILE.read_text(encoding="utf-8")
    bear2 = text[text.index('(group "Bear 2"') :]

    assert text.count('(rsi "IEF" {:window 10})') == 1
    assert '"IEF"' not in bear2


@pytest.mark.parametrize(("tlt_end", "expected"), [(130, "QQQ"), (100, "SQQQ")])
def test_nuclear_when_bear_and_nothing_else_holds_then_qqq_or_sqqq_by_tlt_against_psq(
    tlt_end: float, expected: str
) -> None:
    allocation = _run(_bear().rsi("TQQQ", 40).rsi("IEF", 35).trend("TLT", 100, tlt_end))

    checks = _conditions(allocation)
    assert ('(> (rsi "IEF" {:window 10}) (rsi "PSQ" {:window 20}))', False) in checks
    assert checks[-1] == (
        '(> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))',
        expected == "QQQ",
    )
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_nuclear_when_qqq_crashed_and_tlt_strong_then_bear1_and_bear2_both_buy_tqqq() -> None:
    paths = _bear().trend("QQQ", 200, 50).trend("TLT", 100, 130).trend("TQQQ", 80, 100)

    allocation = _run(paths)

    assert ('(< (cumulative-return "QQQ" {:window 60}) -10)', True) in _conditions(allocation)
    assert dict(allocation.weights) == {"TQQQ": Decimal(1)}


def test_nuclear_when_qqq_crashed_and_tlt_weak_then_inverse_volatility_of_psq_and_sqqq() -> None:
    # Bear 1 holds PSQ (QQQ crash rule, TLT weaker than PSQ); Bear 2 skips that rule and holds
    # SQQQ (TQQQ above its SMA, TLT weaker). Both have held them all along, so each bear's
    # volatility is its holding's own 14-day stdev of returns.
    paths = (
        _bear()
        .trend("QQQ", 200, 50)
        .trend("TLT", 130, 100)
        .trend("TQQQ", 80, 100)
        .trend("SQQQ", 100, 100, step=3.0)
    )

    allocation = _run(paths)

    closes = paths.paths()
    inverse_psq = 1.0 / stdev_return(closes["PSQ"], 14)[-1]
    inverse_sqqq = 1.0 / stdev_return(closes["SQQQ"], 14)[-1]
    expected_psq = inverse_psq / (inverse_psq + inverse_sqqq)
    ranking = next(e for e in allocation.trace if isinstance(e, RankingTrace))
    assert ranking.method == "(weight-inverse-volatility 14)"
    assert [label for label, _ in ranking.scores] == ["Bear 1", "Bear 2"]
    assert set(allocation.weights) == {"PSQ", "SQQQ"}
    assert float(allocation.weights["PSQ"]) == pytest.approx(expected_psq, abs=2e-8)
    assert sum(allocation.weights.values()) == Decimal(1)
