"""TQQQ FTLT: constructed prices force every branch; checks the deciding step and weights."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from alchemiser_strategy.domain.allocation import Allocation, ConditionTrace, RankingTrace
from alchemiser_strategy.domain.compiler import load_strategy
from alchemiser_strategy.domain.engine import evaluate
from alchemiser_strategy.domain.indicators import rsi
from alchemiser_strategy.domain.sample_prices import PathSet, market_from_paths

FILE = Path(__file__).parents[2] / "strategies" / "tqqq_ftlt.clj"
STRATEGY = load_strategy(FILE.read_text(encoding="utf-8"), "tqqq_ftlt.clj")
REGIME = '(> (current-price "SPY") (moving-average-price "SPY" {:window 200}))'
TQQQ_BELOW_SMA = '(< (current-price "TQQQ") (moving-average-price "TQQQ" {:window 20}))'


def _bull() -> PathSet:
    return PathSet(STRATEGY.symbols).trend("SPY", 60, 100)


def _bear() -> PathSet:
    return PathSet(STRATEGY.symbols).trend("SPY", 160, 100)


def _run(paths: PathSet) -> Allocation:
    return evaluate(STRATEGY, paths.market())


def _conditions(allocation: Allocation) -> list[tuple[str, bool]]:
    return [(e.expression, e.result) for e in allocation.trace if isinstance(e, ConditionTrace)]


def test_ftlt_when_bull_and_tqqq_overbought_then_uvxy() -> None:
    allocation = _run(_bull().rsi("TQQQ", 85))

    assert _conditions(allocation) == [
        (REGIME, True),
        ('(> (rsi "TQQQ" {:window 10}) 79)', True),
    ]
    assert dict(allocation.weights) == {"UVXY": Decimal(1)}


def test_ftlt_when_bull_and_spxl_overbought_then_uvxy() -> None:
    allocation = _run(_bull().rsi("SPXL", 85))

    assert _conditions(allocation)[-1] == ('(> (rsi "SPXL" {:window 10}) 80)', True)
    assert dict(allocation.weights) == {"UVXY": Decimal(1)}


@pytest.mark.parametrize(("xlk", "kmlm", "expected"), [(65, 45, "TQQQ"), (45, 65, "SQQQ")])
def test_ftlt_when_bull_and_calm_then_xlk_against_kmlm_picks_tqqq_or_sqqq(
    xlk: float, kmlm: float, expected: str
) -> None:
    allocation = _run(_bull().rsi("XLK", xlk).rsi("KMLM", kmlm))

    assert _conditions(allocation)[-1] == (
        '(> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))',
        expected == "TQQQ",
    )
    assert dict(allocation.weights) == {expected: Decimal(1)}


def test_ftlt_when_bear_and_tqqq_oversold_then_tecl() -> None:
    allocation = _run(_bear().rsi("TQQQ", 25))

    assert _conditions(allocation) == [(REGIME, False), ('(< (rsi "TQQQ" {:window 10}) 31)', True)]
    assert dict(allocation.weights) == {"TECL": Decimal(1)}


def test_ftlt_when_bear_and_spy_oversold_then_upro() -> None:
    allocation = _run(_bear().rsi("SPY", 25))

    assert _conditions(allocation)[-1] == ('(< (rsi "SPY" {:window 10}) 30)', True)
    assert dict(allocation.weights) == {"UPRO": Decimal(1)}


def _below_sma(paths: PathSet) -> PathSet:
    # TQQQ falls on the last bar to RSI 40: below its 20-day SMA but not oversold.
    return paths.rsi("TQQQ", 40)


def test_ftlt_when_tqqq_below_sma_and_shorting_group_is_stronger_then_sqqq() -> None:
    # XLK below KMLM all along, so the shorting group has held SQQQ, which has been rising.
    paths = _below_sma(
        _bear().trend("XLK", 130, 100).trend("KMLM", 100, 130).trend("SQQQ", 80, 140)
    ).trend("TLT", 130, 100)

    allocation = _run(paths)

    assert (TQQQ_BELOW_SMA, True) in _conditions(allocation)
    ranking = next(e for e in allocation.trace if isinstance(e, RankingTrace))
    assert ranking.selected == ("Shorting",)
    # The group has held SQQQ for its whole history, so it scores like SQQQ's own RSI.
    sqqq_rsi = rsi(paths.paths()["SQQQ"], 10)[-1]
    assert dict(ranking.scores)["Shorting"] == pytest.approx(sqqq_rsi, rel=1e-6)
    assert _conditions(allocation)[-1] == (
        '(< (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))',
        True,
    )
    assert dict(allocation.weights) == {"SQQQ": Decimal(1)}


def test_ftlt_when_tqqq_below_sma_and_tlt_is_stronger_then_tlt() -> None:
    paths = _below_sma(
        _bear().trend("XLK", 130, 100).trend("KMLM", 100, 130).trend("SQQQ", 140, 80)
    ).trend("TLT", 100, 130)

    allocation = _run(paths)

    ranking = next(e for e in allocation.trace if isinstance(e, RankingTrace))
    scores = dict(ranking.scores)
    assert scores["TLT"] > scores["Shorting"]
    assert ranking.selected == ("TLT",)
    assert dict(allocation.weights) == {"TLT": Decimal(1)}


def test_ftlt_when_tqqq_below_sma_and_group_holds_tlt_then_tlt_either_way() -> None:
    paths = _below_sma(_bear().trend("XLK", 100, 130).trend("KMLM", 130, 100))

    allocation = _run(paths)

    ranking = next(e for e in allocation.trace if isinstance(e, RankingTrace))
    assert dict(allocation.weights) == {"TLT": Decimal(1)}
    assert set(dict(ranking.scores)) == {"TLT", "Shorting"}


def test_ftlt_when_group_history_switches_then_score_follows_its_own_returns() -> None:
    # XLK rises above KMLM for a stretch near the end, so the group held TLT there, else SQQQ.
    paths = _below_sma(_bear().trend("SQQQ", 80, 140).trend("TLT", 130, 100)).paths()
    length = len(paths["XLK"])
    moves = np.where(np.arange(length) % 2 == 0, 0.6, -1.0)  # drifting down
    moves[length - 25 : length - 10] = np.where(np.arange(15) % 2 == 0, 1.5, -0.5)  # rally
    paths["XLK"] = 100.0 + np.cumsum(moves)

    allocation = evaluate(STRATEGY, market_from_paths(paths))

    # Independent computation of the group's equity curve and its RSI(10).
    xlk_rsi, kmlm_rsi = rsi(paths["XLK"], 10), rsi(paths["KMLM"], 10)
    held = ["SQQQ" if xlk_rsi[t] < kmlm_rsi[t] else "TLT" for t in range(length)]
    assert "TLT" in held[length - 25 :] and held[-1] == "SQQQ"
    equity = [1.0]
    for t in range(10, length - 1):
        prices = paths[held[t]]
        equity.append(equity[-1] * prices[t + 1] / prices[t])
    ranking = next(e for e in allocation.trace if isinstance(e, RankingTrace))
    assert dict(ranking.scores)["Shorting"] == pytest.approx(
        rsi(np.array(equity), 10)[-1], rel=1e-9
    )
    assert dict(ranking.scores)["Shorting"] != pytest.approx(rsi(paths["SQQQ"], 10)[-1], rel=1e-3)


@pytest.mark.parametrize(("sqqq", "expected"), [(25, "SQQQ"), (50, "TQQQ")])
def test_ftlt_when_tqqq_above_sma_then_sqqq_if_oversold_else_tqqq(
    sqqq: float, expected: str
) -> None:
    allocation = _run(_bear().rsi("TQQQ", 60).rsi("SQQQ", sqqq))

    checks = _conditions(allocation)
    assert (TQQQ_BELOW_SMA, False) in checks
    assert checks[-1] == ('(< (rsi "SQQQ" {:window 10}) 31)', expected == "SQQQ")
    assert dict(allocation.weights) == {expected: Decimal(1)}
