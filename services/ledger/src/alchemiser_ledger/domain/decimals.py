"""Decimal arithmetic rules of the ledger: context, quanta and rounding.

One place, so every caller rounds the same way:

* Arithmetic runs in :data:`LEDGER_CONTEXT` (50 significant digits, ``ROUND_HALF_EVEN``,
  traps on invalid operations), so results never depend on the caller's thread context and
  products such as ``qty x price`` are exact.
* Quantities have 9 decimal places (:data:`QTY_QUANTUM`, the exchange's precision); a share
  of a quantity is rounded *down*, so parts never exceed what they split.
* Average costs have 6 decimal places (:data:`COST_QUANTUM`, the precision of a fill price),
  half to even.
* Money (P&L, fee parts) is in cents (:data:`MONEY_QUANTUM`), half to even (banker's
  rounding: no upward bias when many amounts are rounded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from alchemiser_ledger.exceptions import InvalidLedgerInputError

__all__ = [
    "COST_QUANTUM",
    "LEDGER_CONTEXT",
    "MONEY_QUANTUM",
    "QTY_QUANTUM",
    "ZERO",
    "has_qty_precision",
    "quantize_cost",
    "quantize_money",
    "round_qty_down",
    "split_pro_rata",
]

ZERO = Decimal(0)
"""Zero, the start of every sum."""

QTY_QUANTUM = Decimal("1E-9")
"""Quantities have 9 decimal places, as on the exchange."""

COST_QUANTUM = Decimal("1E-6")
"""Average costs have 6 decimal places, as fill prices do."""

MONEY_QUANTUM = Decimal("0.01")
"""Money is reported in cents."""

LEDGER_CONTEXT = Context(
    prec=50,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""The decimal context every ledger computation runs in (see the module docstring)."""


def round_qty_down(value: Decimal) -> Decimal:
    """Round a quantity down (toward zero) to 9 decimal places."""
    return value.quantize(QTY_QUANTUM, rounding=ROUND_DOWN, context=LEDGER_CONTEXT)


def has_qty_precision(value: Decimal) -> bool:
    """Whether ``value`` has at most 9 decimal places (so splitting it stays exact)."""
    return round_qty_down(value) == value


def quantize_cost(value: Decimal) -> Decimal:
    """Round an average cost to 6 decimal places, half to even."""
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN, context=LEDGER_CONTEXT)


def quantize_money(value: Decimal) -> Decimal:
    """Round an amount to cents, half to even."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN, context=LEDGER_CONTEXT)


def split_pro_rata(
    total: Decimal,
    weights: Mapping[str, Decimal],
    round_part: Callable[[Decimal], Decimal],
) -> dict[str, Decimal]:
    """Split ``total`` over the names of ``weights`` in proportion to their weights.

    Names are taken in sorted order; each part but the last is
    ``round_part(total x weight / sum of weights)`` and the last name takes the remainder, so
    the parts always sum exactly to ``total``. The result is keyed in that order. Weights must
    be non-negative with a positive sum.
    """
    names = sorted(weights)
    weight_sum = sum((weights[name] for name in names), ZERO)
    if not names or weight_sum <= 0 or any(weights[name] < 0 for name in names):
        raise InvalidLedgerInputError(f"cannot split by weights {dict(weights)!r}")
    parts: dict[str, Decimal] = {}
    allotted = ZERO
    with localcontext(LEDGER_CONTEXT):
        for name in names[:-1]:
            part = round_part(total * weights[name] / weight_sum)
            parts[name] = part
            allotted += part
        parts[names[-1]] = total - allotted
    return parts
