"""The strategy book: each strategy file's positions at average cost, and the fills that move it.

A :class:`StrategyBook` is an immutable value; :meth:`StrategyBook.apply` books one fill,
already split into per-strategy quantities (see :mod:`.attribution`), and returns the new
book with the realised P&L of that fill per strategy.

Conventions (rounding per :mod:`.decimals`):

* **Average cost.** A buy re-averages its strategy's cost, weighted by quantity:
  ``(held x avg + bought x price) / (held + bought)``, rounded to 6 places half to even. A
  sell leaves the average unchanged; a position sold to zero is dropped, so a later buy
  starts a fresh average.
* **Realised P&L.** A sell realises ``sold x (price - avg cost)`` per strategy, in cents.
* **Fees.** A fill's fees are split over its parts pro rata by quantity (cents, half to
  even, the last strategy by name taking the remainder). Fees are **not** part of the cost
  basis: they reduce realised P&L on the day they are paid, on buys and sells alike, so a
  buy realises minus its fee share. The book's positions are therefore valued gross of fees,
  and the fees show in P&L exactly once, when paid.
* **Long only.** A strategy cannot sell more than it holds: that is :class:`OversellError`
  (the ledger missed a buy, or the split is wrong), never a short position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType

from alchemiser_ledger.domain._checks import check_decimal, check_name
from alchemiser_ledger.domain.decimals import (
    LEDGER_CONTEXT,
    ZERO,
    has_qty_precision,
    quantize_cost,
    quantize_money,
    split_pro_rata,
)
from alchemiser_ledger.exceptions import (
    InvalidLedgerInputError,
    MissingCloseError,
    OversellError,
)

__all__ = ["Fill", "PositionCost", "Side", "StrategyBook"]


class Side(StrEnum):
    """Direction of a fill, spelled as in ``execution.order.settled.v1``."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Fill:
    """One settled order's execution: what was traded, at what price, for what fees.

    ``qty`` is the filled quantity (positive, at most 9 decimal places), ``price`` the
    average fill price (positive) and ``fees`` the total fees charged, in whole cents.
    ``broker_order_id`` is ``None`` when the broker's id is unknown.
    """

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fees: Decimal
    client_order_id: str
    broker_order_id: str | None

    def __post_init__(self) -> None:
        """Reject fills the book cannot split exactly or value."""
        check_name(self.symbol, "fill symbol")
        if not isinstance(self.side, Side):
            raise InvalidLedgerInputError(f"fill side must be a Side, got {self.side!r}")
        qty = check_decimal(self.qty, "fill quantity")
        if qty <= 0 or not has_qty_precision(qty):
            raise InvalidLedgerInputError(
                f"fill quantity must be positive with at most 9 decimal places: {qty}"
            )
        if check_decimal(self.price, "fill price") <= 0:
            raise InvalidLedgerInputError(f"fill price must be positive: {self.price}")
        fees = check_decimal(self.fees, "fill fees")
        if fees < 0 or quantize_money(fees) != fees:
            raise InvalidLedgerInputError(f"fill fees must be whole cents >= 0: {fees}")
        check_name(self.client_order_id, "client order id")
        if self.broker_order_id is not None:
            check_name(self.broker_order_id, "broker order id")


@dataclass(frozen=True, slots=True)
class PositionCost:
    """One strategy's holding of one symbol: a positive quantity at an average cost."""

    qty: Decimal
    avg_cost: Decimal

    def __post_init__(self) -> None:
        """Reject empty or negative holdings and non-positive costs."""
        if check_decimal(self.qty, "position quantity") <= 0:
            raise InvalidLedgerInputError(f"position quantity must be positive: {self.qty}")
        if check_decimal(self.avg_cost, "average cost") <= 0:
            raise InvalidLedgerInputError(f"average cost must be positive: {self.avg_cost}")


Positions = Mapping[str, Mapping[str, PositionCost]]
"""strategy -> symbol -> position, the shape of :attr:`StrategyBook.positions`."""


@dataclass(frozen=True, slots=True)
class StrategyBook:
    """Every strategy's positions at average cost (``strategy -> symbol -> PositionCost``).

    Immutable: the mappings are frozen copies and :meth:`apply` returns a new book. A
    strategy with no position has no entry.
    """

    positions: Positions = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the names and positions and freeze the mappings (empty strategies dropped)."""
        frozen: dict[str, Mapping[str, PositionCost]] = {}
        for strategy in sorted(self.positions):
            check_name(strategy, "strategy")
            held = self.positions[strategy]
            for symbol, position in held.items():
                check_name(symbol, "position symbol")
                if not isinstance(position, PositionCost):
                    raise InvalidLedgerInputError(
                        f"position {strategy}/{symbol} must be a PositionCost: {position!r}"
                    )
            if held:
                frozen[strategy] = MappingProxyType(dict(sorted(held.items())))
        object.__setattr__(self, "positions", MappingProxyType(frozen))

    def position(self, strategy: str, symbol: str) -> PositionCost | None:
        """``strategy``'s position in ``symbol``, or ``None`` if it holds none."""
        return self.positions.get(strategy, {}).get(symbol)

    def holdings(self, symbol: str) -> dict[str, Decimal]:
        """Each holding strategy's quantity of ``symbol``, by strategy name."""
        return {
            strategy: held[symbol].qty
            for strategy, held in self.positions.items()
            if symbol in held
        }

    def unrealised(self, closes: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """Each holding strategy's unrealised P&L at ``closes``: sum of qty x (close - avg cost).

        Summed exactly over the strategy's symbols, then rounded to cents half to even.
        Raises :class:`MissingCloseError` if a held symbol has no close.
        """
        result: dict[str, Decimal] = {}
        with localcontext(LEDGER_CONTEXT):
            for strategy, held in self.positions.items():
                total = ZERO
                for symbol, position in held.items():
                    close = closes.get(symbol)
                    if close is None:
                        raise MissingCloseError(f"no close for {symbol}, held by {strategy}")
                    check_decimal(close, f"close of {symbol}")
                    total += position.qty * (close - position.avg_cost)
                result[strategy] = quantize_money(total)
        return result

    def apply(
        self, fill: Fill, parts: Mapping[str, Decimal]
    ) -> tuple[StrategyBook, dict[str, Decimal]]:
        """Book ``fill`` split into ``parts``; return the new book and its realised P&L.

        ``parts`` maps strategy to quantity: positive, at most 9 decimal places, summing
        exactly to ``fill.qty`` (:func:`~.attribution.attribute_fill` returns such a split),
        else :class:`InvalidLedgerInputError`. The realised P&L of this fill (see the module
        docstring) is keyed by the same strategies. A sell part above its strategy's holding
        raises :class:`OversellError`; the book is then unchanged (it is immutable).
        """
        _check_parts(fill, parts)
        fee_parts = split_pro_rata(fill.fees, parts, quantize_money)
        positions = {strategy: dict(held) for strategy, held in self.positions.items()}
        realised: dict[str, Decimal] = {}
        with localcontext(LEDGER_CONTEXT):
            for strategy, qty in sorted(parts.items()):
                held = positions.setdefault(strategy, {})
                before = held.get(fill.symbol)
                if fill.side is Side.BUY:
                    held[fill.symbol] = _bought(before, qty, fill.price)
                    realised[strategy] = ZERO - fee_parts[strategy]
                    continue
                if before is None or qty > before.qty:
                    raise OversellError(
                        f"{strategy} sells {qty} {fill.symbol} but holds "
                        f"{before.qty if before else 0} (order {fill.client_order_id})"
                    )
                gain = quantize_money(qty * (fill.price - before.avg_cost))
                realised[strategy] = gain - fee_parts[strategy]
                if qty == before.qty:
                    del held[fill.symbol]
                else:
                    held[fill.symbol] = PositionCost(before.qty - qty, before.avg_cost)
        return StrategyBook(positions), realised


def _bought(before: PositionCost | None, qty: Decimal, price: Decimal) -> PositionCost:
    """The position after buying ``qty`` at ``price`` on top of ``before``."""
    if before is None:
        return PositionCost(qty, quantize_cost(price))
    total = before.qty + qty
    return PositionCost(total, quantize_cost((before.qty * before.avg_cost + qty * price) / total))


def _check_parts(fill: Fill, parts: Mapping[str, Decimal]) -> None:
    """Raise :class:`InvalidLedgerInputError` unless ``parts`` is an exact split of ``fill``."""
    if not parts:
        raise InvalidLedgerInputError(f"fill {fill.client_order_id} has no parts to book")
    for strategy, qty in parts.items():
        check_name(strategy, "strategy")
        if check_decimal(qty, f"part of {strategy}") <= 0 or not has_qty_precision(qty):
            raise InvalidLedgerInputError(
                f"part of {strategy} must be positive with at most 9 decimal places: {qty}"
            )
    with localcontext(LEDGER_CONTEXT):
        total = sum(parts.values(), ZERO)
    if total != fill.qty:
        raise InvalidLedgerInputError(
            f"parts {dict(parts)!r} do not sum to the filled quantity {fill.qty}"
        )
