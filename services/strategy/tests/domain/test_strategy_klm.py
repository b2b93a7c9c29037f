"""KLM: constructed prices force every branch; each test checks the deciding step and weights."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser_strategy.domain.allocation import Allocation, ConditionTrace, RankingTrace
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.sample_prices import PathSet

FILE = Path(__file__).parents[2] / "strategies" / "klm.clj"
STRATEGY = load_strategy(FILE.read_text(encoding="utf-8"), "klm.clj")

OVERBOUGHT = [
    ("QQQE", 79),
    ("VTV", 79),
    ("VOX", 79),
    ("TECL", 79),
    ("VOOG", 79),
    ("VOOV", 79),
    ("XLP", 75),
    ("TQQQ", 79),
    ("XLY", 80),
    ("FAS", 80),
    ("SPY", 80),
]


def _paths() -> PathSet:
    return PathSet(STRATEGY.symbols)


def _run(paths: PathSet) -> Allocation:
    return evaluate(STRATEGY, paths.market())


def _conditions(allocation: Allocation) -> list[tuple[str, bool]]:
    return [(e.expression, e.result) for e in allocation.trace if isinstance(e, ConditionTrace)]


@pytest.mark.parametrize(("symbol", "threshold"), OVERBOUGHT)
def test_klm_when_one_symbol_exceeds_its_overbought_threshold_then_uvxy(
    symbol: str, threshold: int
) -> None:
    allocation = _run(_paths().rsi(symbol, threshold + 0.5))

    checks = _conditions(allocation)
    position = [s for s, _ in OVERBOUGHT].index(symbol)
    assert checks[-1] == (f'(> (rsi "{symbol}" {{:window 10}}) {threshold})', True)
    assert len(checks) == position + 1  # every earlier guard was checked and did not fire
    assert dict(allocation.weights) == {"UVXY": Decimal(1)}


@pytest.mark.parametrize(("symbol", "threshold"), OVERBOUGHT)
def test_klm_when_symbol_just_below_its_threshold_then_guard_does_not_fire(
    symbol: str, threshold: int
) -> None:
    allocation = _run(_paths().rsi(symbol, threshold - 0.5).rsi("XLK", 40).rsi("KMLM", 60))

    checks = dict(_conditions(allocation))
    assert checks[f'(> (rsi "{symbol}" {{:window 10}}) {threshold})'] is False
    assert "UVXY" not in allocation.weights


def test_klm_when_several_overbought_then_first_in_order_decides() -> None:
    allocation = _run(_paths().rsi("SPY", 90).rsi("VOX", 90))

    assert _conditions(allocation)[-1] == ('(> (rsi "VOX" {:window 10}) 79)', True)
    assert dict(allocation.weights) == {"UVXY": Decimal(1)}


@pytest.mark.parametrize(
    ("symbol", "value", "threshold", "expected"),
    [
        ("TQQQ", 25, 30, "TECL"),
        ("SOXL", 25, 30, "SOXL"),
        ("SPXL", 25, 30, "SPXL"),
        ("LABU", 20, 25, "LABU"),
    ],
)
def test_klm_when_pop_symbol_oversold_then_buy_the_pop(
    symbol: str, value: float, threshold: int, expected: str
) -> None:
    allocation = _run(_paths().rsi(symbol, value))

    assert _conditions(allocation)[-1] == (f'(< (rsi "{symbol}" {{:window 10}}) {threshold})', True)
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_klm_when_labu_at_27_then_no_pop_because_its_threshold_is_25() -> None:
    allocation = _run(_paths().rsi("LABU", 27).rsi("XLK", 40).rsi("KMLM", 60))

    assert ('(< (rsi "LABU" {:window 10}) 25)', False) in _conditions(allocation)
    assert "LABU" not in allocation.weights


def test_klm_when_xlk_beats_kmlm_then_two_lowest_rsi_of_tecl_soxl_svix() -> None:
    paths = _paths().rsi("XLK", 65).rsi("KMLM", 45).rsi("TECL", 40).rsi("SOXL", 60).rsi("SVIX", 45)

    allocation = _run(paths)

    assert _conditions(allocation)[-1] == (
        '(> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))',
        True,
    )
    ranking = allocation.trace[-1]
    assert isinstance(ranking, RankingTrace)
    assert ranking.selected == ("TECL", "SVIX")
    assert dict(allocation.weights) == {"SVIX": Decimal("0.5"), "TECL": Decimal("0.5")}


def test_klm_when_tecl_soxl_svix_tie_then_alphabetically_first_two() -> None:
    allocation = _run(_paths().rsi("XLK", 65).rsi("KMLM", 45))

    assert dict(allocation.weights) == {"SOXL": Decimal("0.5"), "SVIX": Decimal("0.5")}


@pytest.mark.parametrize(("sqqq", "tlt", "expected"), [(60, 40, "SQQQ"), (40, 60, "TLT")])
def test_klm_when_kmlm_beats_xlk_then_higher_rsi_of_sqqq_and_tlt(
    sqqq: float, tlt: float, expected: str
) -> None:
    allocation = _run(_paths().rsi("XLK", 40).rsi("KMLM", 60).rsi("SQQQ", sqqq).rsi("TLT", tlt))

    assert _conditions(allocation)[-1] == (
        '(> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))',
        False,
    )
    ranking = allocation.trace[-1]
    assert isinstance(ranking, RankingTrace)
    assert ranking.method == "(filter (rsi {:window 10}) (select-top 1))"
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_klm_when_xlk_equals_kmlm_then_strict_comparison_takes_the_else_side() -> None:
    allocation = _run(_paths().rsi("SQQQ", 60))

    assert _conditions(allocation)[-1][1] is False
    assert dict(allocation.weights) == {"SQQQ": Decimal(1)}
