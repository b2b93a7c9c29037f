"""Which strategy file a fill belongs to: the split of one fill into per-strategy quantities.

An account trades the *consolidated* target of its strategy files, so one order serves
several files at once. The ledger splits every fill back over them:

* **Buys follow the target that wanted them.** A buy of a symbol is split by each strategy's
  share of that symbol's consolidated target, ``allocation x own weight`` over the sum of
  that product across strategies (:meth:`StrategyTargets.shares`).
* **Sells follow the holdings that carried them.** A sell is split by each strategy's held
  quantity of the symbol just before the sell, so a strategy's realised P&L is on the
  shares it actually held, at its own average cost. A sell of more than all strategies
  hold sells every holding in full and leaves the excess unattributed.
* **Unattributed.** A buy no strategy wanted (it should not happen) and a sell of a symbol
  no strategy holds go whole to the :data:`UNATTRIBUTED` bucket, so every share stays in
  the ledger and the gap is visible rather than silently spread.

Quantities split exactly: strategies are taken by name, each part but the last is rounded
down to 9 decimal places (the exchange's quantity precision) and the last takes the
remainder, so the parts sum to the fill's quantity. A sell part is never above its
strategy's holding: in the rare case the last strategy's remainder would exceed it (by a
few units of 1e-9), the excess moves to the other holders in name order. Parts of zero are
left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from types import MappingProxyType

from alchemiser_ledger.domain._checks import check_decimal, check_name
from alchemiser_ledger.domain.book import Fill, Side
from alchemiser_ledger.domain.decimals import (
    LEDGER_CONTEXT,
    ZERO,
    round_qty_down,
    split_pro_rata,
)
from alchemiser_ledger.exceptions import InvalidLedgerInputError

__all__ = ["UNATTRIBUTED", "StrategyTargets", "attribute_fill"]

UNATTRIBUTED = "(unattributed)"
"""The bucket for quantities no strategy wanted or held (its name cannot be a file's)."""


@dataclass(frozen=True, slots=True)
class StrategyTargets:
    """One workflow's targets per strategy file, as ``strategy.signal.generated.v1`` gives them.

    ``allocations`` maps each succeeded strategy file to its allocation weight (they sum to
    1); ``weights`` maps a strategy to its *own* target weight per symbol (each strategy's
    weights sum to 1 on their own). A strategy in ``weights`` must have an allocation; all
    values are finite and non-negative. Shares are normalised, so the allocations' rounding
    in the event does not matter.
    """

    allocations: Mapping[str, Decimal]
    weights: Mapping[str, Mapping[str, Decimal]]

    def __post_init__(self) -> None:
        """Check the names and values and freeze the mappings (copies)."""
        for strategy, allocation in self.allocations.items():
            _check_strategy(strategy)
            if check_decimal(allocation, f"allocation of {strategy}") < 0:
                raise InvalidLedgerInputError(f"allocation of {strategy} is negative")
        frozen: dict[str, Mapping[str, Decimal]] = {}
        for strategy, own in self.weights.items():
            if strategy not in self.allocations:
                raise InvalidLedgerInputError(
                    f"strategy {strategy!r} has weights but no allocation"
                )
            for symbol, weight in own.items():
                check_name(symbol, f"symbol of {strategy}")
                if check_decimal(weight, f"weight of {strategy}/{symbol}") < 0:
                    raise InvalidLedgerInputError(f"weight of {strategy}/{symbol} is negative")
            frozen[strategy] = MappingProxyType(dict(own))
        object.__setattr__(self, "allocations", MappingProxyType(dict(self.allocations)))
        object.__setattr__(self, "weights", MappingProxyType(frozen))

    def shares(self, symbol: str) -> dict[str, Decimal]:
        """Each strategy's share of the consolidated target of ``symbol``, by strategy name.

        ``allocation_s x weight_s(symbol) / sum over strategies of the same``, in
        :data:`~.decimals.LEDGER_CONTEXT` (not rounded further). Strategies that do not want
        the symbol are left out; empty when none does.
        """
        with localcontext(LEDGER_CONTEXT):
            wanted = {
                strategy: self.allocations[strategy] * own[symbol]
                for strategy, own in sorted(self.weights.items())
                if own.get(symbol, ZERO) > 0 and self.allocations[strategy] > 0
            }
            total = sum(wanted.values(), ZERO)
            return {strategy: amount / total for strategy, amount in wanted.items()}


def attribute_fill(
    fill: Fill, targets: StrategyTargets, holdings: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """Split ``fill`` into quantities per strategy (see the module docstring for the rule).

    ``targets`` are the targets of the workflow that placed the order (used for a buy);
    ``holdings`` is each strategy's quantity of the fill's symbol just before it (used for a
    sell; :meth:`~.book.StrategyBook.holdings` gives it). The result is keyed by strategy
    name, its values are positive and sum exactly to ``fill.qty``.
    """
    if fill.side is Side.BUY:
        shares = targets.shares(fill.symbol)
        if not shares:
            return {UNATTRIBUTED: fill.qty}
        return _without_zeros(split_pro_rata(fill.qty, shares, round_qty_down))
    held = _positive_holdings(holdings)
    if not held:
        return {UNATTRIBUTED: fill.qty}
    with localcontext(LEDGER_CONTEXT):
        total_held = sum(held.values(), ZERO)
        if fill.qty >= total_held:
            parts = dict(held)
            if fill.qty > total_held:
                parts[UNATTRIBUTED] = parts.get(UNATTRIBUTED, ZERO) + fill.qty - total_held
            return dict(sorted(parts.items()))
        parts = split_pro_rata(fill.qty, held, round_qty_down)
        return _without_zeros(_capped(parts, held))


def _check_strategy(strategy: object) -> None:
    """Reject a blank strategy name and the reserved :data:`UNATTRIBUTED`."""
    if check_name(strategy, "strategy") == UNATTRIBUTED:
        raise InvalidLedgerInputError(f"{UNATTRIBUTED!r} is reserved, not a strategy file")


def _positive_holdings(holdings: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The holdings above zero, by name; a negative or malformed holding is an error."""
    held: dict[str, Decimal] = {}
    for strategy, qty in sorted(holdings.items()):
        check_name(strategy, "strategy")
        if check_decimal(qty, f"holding of {strategy}") < 0:
            raise InvalidLedgerInputError(f"holding of {strategy} is negative: {qty}")
        if qty > 0:
            held[strategy] = qty
    return held


def _capped(parts: dict[str, Decimal], held: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """``parts`` with any part above its holding cut to it and the excess moved to the
    other holders with room, in name order. The sum is unchanged; needs sum <= total held.
    """
    capped = dict(parts)
    excess = ZERO
    for strategy, part in parts.items():
        if part > held[strategy]:
            excess += part - held[strategy]
            capped[strategy] = held[strategy]
    for strategy, part in capped.items():
        if excess == 0:
            break
        moved = min(held[strategy] - part, excess)
        capped[strategy] = part + moved
        excess -= moved
    return capped


def _without_zeros(parts: dict[str, Decimal]) -> dict[str, Decimal]:
    """``parts`` without its zero entries."""
    return {strategy: qty for strategy, qty in parts.items() if qty != 0}
