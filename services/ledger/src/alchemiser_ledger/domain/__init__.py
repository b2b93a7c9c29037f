"""The ledger service's pure core: fill attribution, the strategy book and daily P&L.

* :mod:`.attribution` splits a fill over the strategy files behind it (buys by target,
  sells by holdings);
* :mod:`.book` keeps each file's positions at average cost and realises P&L and fees;
* :mod:`.pnl` turns daily account snapshots and the book into account and per-file P&L.

No I/O, no clock, Decimal only. Rounding rules are in :mod:`.decimals`; errors are in
:mod:`alchemiser_ledger.exceptions`.
"""

from __future__ import annotations

from alchemiser_ledger.domain.attribution import UNATTRIBUTED, StrategyTargets, attribute_fill
from alchemiser_ledger.domain.book import Fill, PositionCost, Side, StrategyBook
from alchemiser_ledger.domain.decimals import (
    COST_QUANTUM,
    MONEY_QUANTUM,
    QTY_QUANTUM,
    quantize_cost,
    quantize_money,
    round_qty_down,
)
from alchemiser_ledger.domain.pnl import (
    DailySnapshot,
    DayPnl,
    PnlFigures,
    pnl_by_day,
    position_breaks,
)

__all__ = [
    "COST_QUANTUM",
    "MONEY_QUANTUM",
    "QTY_QUANTUM",
    "UNATTRIBUTED",
    "DailySnapshot",
    "DayPnl",
    "Fill",
    "PnlFigures",
    "PositionCost",
    "Side",
    "StrategyBook",
    "StrategyTargets",
    "attribute_fill",
    "pnl_by_day",
    "position_breaks",
    "quantize_cost",
    "quantize_money",
    "round_qty_down",
]
