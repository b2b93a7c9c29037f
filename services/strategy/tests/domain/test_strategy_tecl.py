"""TECL: constructed prices force every branch; each test checks the deciding step and weights."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_strategy.domain.allocation import Allocation, ConditionTrace, RankingTrace
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.sample_prices import PathSet

FILE = Path(__file__).parents[2] / "strategies" / "tecl.clj"
STRATEGY = load_strategy(FILE.read_text(encoding="utf-8"), "tecl.clj")
REGIME = '(> (current-price "SPY") (moving-average-price "SPY" {:window 200}))'


def _bull() -> PathSet:
    return PathSet(STRATEGY.symbols).trend("SPY", 60, 100)


def _bear() -> PathSet:
    return PathSet(STRATEGY.symbols).trend("SPY", 160, 100)


def _run(paths: PathSet) -> Allocation:
    return evaluate(STRATEGY, paths.market())


def _decided_by(allocation: Allocation) -> tuple[str, bool]:
    last = allocation.trace[-1]
    assert isinstance(last, ConditionTrace)
    return last.expression, last.result


def _regime(allocation: Allocation) -> bool:
    first = allocation.trace[0]
    assert isinstance(first, ConditionTrace)
    assert first.expression == REGIME
    return first.result


def test_tecl_when_bull_and_tqqq_overbought_then_uvxy_25_bil_75() -> None:
    allocation = _run(_bull().rsi("TQQQ", 85))

    assert _regime(allocation) is True
    assert _decided_by(allocation) == ('(> (rsi "TQQQ" {:window 10}) 79)', True)
    assert dict(allocation.weights) == {"BIL": Decimal("0.75"), "UVXY": Decimal("0.25")}


def test_tecl_when_bull_and_spy_overbought_then_uvxy_25_bil_75() -> None:
    allocation = _run(_bull().rsi("SPY", 85))

    assert _regime(allocation) is True
    assert _decided_by(allocation) == ('(> (rsi "SPY" {:window 10}) 80)', True)
    assert dict(allocation.weights) == {"BIL": Decimal("0.75"), "UVXY": Decimal("0.25")}


@pytest.mark.parametrize(
    ("xlk", "kmlm", "decided_by", "expected"),
    [
        (85, 50, ('(> (rsi "XLK" {:window 10}) 81)', True), "BIL"),
        (70, 50, ('(> (rsi "XLK" {:window 10}) 81)', False), "TECL"),
        (25, 50, ('(< (rsi "XLK" {:window 10}) 29)', True), "TECL"),
        (40, 60, ('(< (rsi "XLK" {:window 10}) 29)', False), "BIL"),
    ],
)
def test_tecl_when_bull_switcher_then_xlk_against_kmlm_decides(
    xlk: float, kmlm: float, decided_by: tuple[str, bool], expected: str
) -> None:
    allocation = _run(_bull().rsi("XLK", xlk).rsi("KMLM", kmlm))

    assert _regime(allocation) is True
    assert _decided_by(allocation) == decided_by
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_tecl_when_bear_and_tqqq_oversold_then_tecl() -> None:
    allocation = _run(_bear().rsi("TQQQ", 25))

    assert _regime(allocation) is False
    assert _decided_by(allocation) == ('(< (rsi "TQQQ" {:window 10}) 31)', True)
    assert dict(allocation.weights) == {"TECL": Decimal(1)}


def test_tecl_when_bear_and_spxl_oversold_then_spxl() -> None:
    allocation = _run(_bear().rsi("SPXL", 25))

    assert _decided_by(allocation) == ('(< (rsi "SPXL" {:window 10}) 29)', True)
    assert dict(allocation.weights) == {"SPXL": Decimal(1)}


def test_tecl_when_bear_and_uvxy_above_84_then_uvxy_15_bil_85() -> None:
    allocation = _run(_bear().rsi("UVXY", 88))

    assert _decided_by(allocation) == ('(> (rsi "UVXY" {:window 10}) 84)', True)
    assert dict(allocation.weights) == {"BIL": Decimal("0.85"), "UVXY": Decimal("0.15")}


def test_tecl_when_bear_and_uvxy_between_74_and_84_then_bil() -> None:
    allocation = _run(_bear().rsi("UVXY", 80))

    assert _decided_by(allocation) == ('(> (rsi "UVXY" {:window 10}) 74)', True)
    assert dict(allocation.weights) == {"BIL": Decimal(1)}


@pytest.mark.parametrize(
    ("xlk", "kmlm", "decided_by", "expected"),
    [
        (85, 50, ('(> (rsi "XLK" {:window 10}) 81)', True), "BIL"),
        (70, 50, ('(> (rsi "XLK" {:window 10}) 81)', False), "TECL"),
        (25, 50, ('(< (rsi "XLK" {:window 10}) 29)', True), "TECL"),
    ],
)
def test_tecl_when_bear_switcher_then_xlk_against_kmlm_decides(
    xlk: float, kmlm: float, decided_by: tuple[str, bool], expected: str
) -> None:
    allocation = _run(_bear().rsi("XLK", xlk).rsi("KMLM", kmlm))

    assert _regime(allocation) is False
    assert _decided_by(allocation) == decided_by
    assert dict(allocation.weights) == {expected: Decimal(1)}


@pytest.mark.parametrize(("sqqq", "bsv", "expected"), [(70, 40, "SQQQ"), (40, 70, "BSV")])
def test_tecl_when_bear_switcher_falls_through_then_higher_rsi9_of_sqqq_and_bsv(
    sqqq: float, bsv: float, expected: str
) -> None:
    paths = _bear().rsi("XLK", 40).rsi("KMLM", 60).rsi("SQQQ", sqqq, 9).rsi("BSV", bsv, 9)

    allocation = _run(paths)

    ranking = allocation.trace[-1]
    assert isinstance(ranking, RankingTrace)
    assert ranking.method == "(filter (rsi {:window 9}) (select-top 1))"
    assert dict(ranking.scores) == pytest.approx({"SQQQ": sqqq, "BSV": bsv})
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_tecl_when_rsi9_of_sqqq_and_bsv_tie_then_alphabetical_bsv() -> None:
    allocation = _run(_bear().rsi("XLK", 40).rsi("KMLM", 60))

    ranking = allocation.trace[-1]
    assert isinstance(ranking, RankingTrace)
    assert ranking.scores[0][1] == ranking.scores[1][1]
    assert dict(allocation.weights) == {"BSV": Decimal(1)}
