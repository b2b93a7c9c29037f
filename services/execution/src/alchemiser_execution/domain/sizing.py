"""Share counts: how many shares each leg trades, and the orders that result.

Shares = |trade $| / price. Fractionable assets keep 6 decimals, others whole shares; both
round *down*, so an order never spends (or sells) more than the plan asked. A full
liquidation sells the position's whole quantity (the broker closes the position). A partial
sell never exceeds the position. A leg that rounds to zero shares is skipped (too small to
express); a leg without a price, or a sell without a position, is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from alchemiser_common.events import OrderSide
from alchemiser_execution.domain.legs import Leg

__all__ = ["FRACTIONAL_QUANTUM", "PlannedOrder", "shares_for", "size_legs"]

FRACTIONAL_QUANTUM = Decimal("0.000001")
_WHOLE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """A sized leg: what will be ordered (``qty`` > 0), or why nothing will be.

    ``error`` marks a leg that should trade but cannot (a failure); ``skipped`` one that is too
    small to trade (not a failure). ``price`` is the reference price used for sizing and caps.
    """

    leg: int
    symbol: str
    side: OrderSide
    qty: Decimal
    price: Decimal
    fractionable: bool
    full_liquidation: bool
    client_order_id: str
    error: str | None = None
    skipped: str | None = None

    @property
    def placeable(self) -> bool:
        """Whether an order is sent for this leg."""
        return self.error is None and self.skipped is None and self.qty > 0

    @property
    def value(self) -> Decimal:
        """The order's estimated value: quantity times the reference price."""
        return self.qty * self.price

    @property
    def whole_shares(self) -> bool:
        """Whether the quantity is a whole number of shares."""
        return self.qty == self.qty.to_integral_value()


def shares_for(amount: Decimal, price: Decimal, *, fractionable: bool) -> Decimal:
    """``amount / price`` rounded down to 6 decimals (fractionable) or whole shares."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    quantum = FRACTIONAL_QUANTUM if fractionable else _WHOLE
    shares = (abs(amount) / price).quantize(quantum, rounding=ROUND_DOWN)
    return shares if shares else Decimal(0)


def size_legs(
    legs: Sequence[Leg],
    *,
    prices: Mapping[str, Decimal],
    fractionable: Mapping[str, bool],
    positions: Mapping[str, Decimal],
    client_order_id: Callable[[int], str],
    unavailable: Mapping[str, str] | None = None,
) -> list[PlannedOrder]:
    """Size every leg with the given prices, fractionability and position quantities.

    ``unavailable`` maps symbols that cannot be traded (unknown or untradable assets) to the
    reason, which becomes the leg's error.
    """
    blocked = unavailable or {}
    return [
        _size(
            leg,
            cid=client_order_id(leg.leg),
            price=prices.get(leg.symbol),
            can_split=fractionable.get(leg.symbol, False),
            held=positions.get(leg.symbol, Decimal(0)),
            blocked=blocked.get(leg.symbol),
        )
        for leg in legs
    ]


def _size(
    leg: Leg,
    *,
    cid: str,
    price: Decimal | None,
    can_split: bool,
    held: Decimal,
    blocked: str | None,
) -> PlannedOrder:
    def planned(
        qty: Decimal, *, error: str | None = None, skipped: str | None = None
    ) -> PlannedOrder:
        return PlannedOrder(
            leg=leg.leg,
            symbol=leg.symbol,
            side=leg.side,
            qty=qty,
            price=price if price is not None else Decimal(0),
            fractionable=can_split,
            full_liquidation=leg.full_liquidation,
            client_order_id=cid,
            error=error,
            skipped=skipped,
        )

    if blocked is not None:
        return planned(Decimal(0), error=blocked)
    if price is None or price <= 0:
        return planned(Decimal(0), error=f"no price for {leg.symbol}")
    if leg.side is OrderSide.SELL and held <= 0:
        return planned(Decimal(0), error=f"no open position in {leg.symbol} to sell")
    if leg.full_liquidation:
        return planned(held)
    qty = shares_for(leg.amount, price, fractionable=can_split)
    if leg.side is OrderSide.SELL:
        qty = min(qty, held)
    if qty <= 0:
        return planned(Decimal(0), skipped=f"{leg.amount} at {price} is less than one share")
    return planned(qty)
