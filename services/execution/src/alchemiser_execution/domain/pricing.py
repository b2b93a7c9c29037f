"""Limit prices inside the spread, re-pegs towards the far side, and when to use market.

Peg ``k`` of a leg with ``max_repegs`` re-pegs prices a buy at ``bid + spread * f`` and a
sell at ``ask - spread * f`` with ``f = 1/2 + (1/2) * k / (max_repegs + 1)``: the first order
rests at the midpoint, each re-peg moves a step towards the far side without reaching it
(the market order that follows the last peg crosses the spread). Prices are rounded to the
tick (1 cent, 0.01 cent below $1) towards the far side and kept inside ``[bid, ask]``.

A quote that is missing, one-sided, crossed or wider than ``max_spread`` (a fraction of the
midpoint; 0.5 % by default) is not usable: the leg goes straight to market.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

from alchemiser_broker.models import Quote
from alchemiser_common.events import OrderSide

__all__ = ["PENNY", "SUB_PENNY", "limit_price", "quote_is_usable", "spread_fraction", "tick_size"]

PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


def tick_size(price: Decimal) -> Decimal:
    """The price increment: a cent from $1 up, a hundredth of a cent below."""
    return PENNY if price >= 1 else SUB_PENNY


def spread_fraction(quote: Quote) -> Decimal | None:
    """``(ask - bid) / mid``, or ``None`` for a quote that is one-sided or crossed."""
    if not quote.is_two_sided:
        return None
    return (quote.ask - quote.bid) / quote.mid


def quote_is_usable(quote: Quote | None, max_spread: Decimal) -> bool:
    """Whether ``quote`` may price a limit order (present, two-sided, not too wide)."""
    if quote is None:
        return False
    spread = spread_fraction(quote)
    return spread is not None and spread <= max_spread


def limit_price(side: OrderSide, quote: Quote, peg: int, max_repegs: int) -> Decimal:
    """The limit price of peg ``peg`` (0 = the first order) for ``side`` on ``quote``."""
    if not quote.is_two_sided:
        raise ValueError(f"cannot price a limit order on a one-sided quote of {quote.symbol}")
    if not 0 <= peg <= max_repegs:
        raise ValueError(f"peg {peg} outside 0..{max_repegs}")
    step = Decimal(peg) / Decimal(max_repegs + 1)
    fraction = (1 + step) / 2
    spread = quote.ask - quote.bid
    if side is OrderSide.BUY:
        raw = quote.bid + spread * fraction
        price = raw.quantize(tick_size(raw), rounding=ROUND_UP)
        return max(min(price, quote.ask), quote.bid)
    raw = quote.ask - spread * fraction
    price = raw.quantize(tick_size(raw), rounding=ROUND_DOWN)
    return min(max(price, quote.bid), quote.ask)
