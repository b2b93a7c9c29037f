"""Decimal arithmetic rules of the planner: context, quanta and canonical text.

Quantization policy (one place, so every caller rounds the same way):

* Arithmetic runs in :data:`PLANNER_CONTEXT` (50 significant digits, ``ROUND_HALF_EVEN``,
  traps on invalid operations), so results never depend on the caller's thread context and
  products such as ``qty x price`` are exact.
* Money leaving the planner is quantized to cents (:data:`MONEY_QUANTUM`) with
  ``ROUND_HALF_EVEN`` (banker's rounding: no upward bias when many amounts are rounded).
* Weights leaving the planner are quantized to 12 places (:data:`WEIGHT_QUANTUM`), same
  rounding.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

__all__ = [
    "MONEY_QUANTUM",
    "PLANNER_CONTEXT",
    "WEIGHT_QUANTUM",
    "canonical_decimal",
    "quantize_money",
    "quantize_weight",
]

MONEY_QUANTUM = Decimal("0.01")
"""Money is reported in cents."""

WEIGHT_QUANTUM = Decimal("1E-12")
"""Weights are reported to 12 decimal places."""

PLANNER_CONTEXT = Context(
    prec=50,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""The decimal context every planner computation runs in (see the module docstring)."""


def quantize_money(value: Decimal) -> Decimal:
    """Round an amount to cents, half to even."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN, context=PLANNER_CONTEXT)


def quantize_weight(value: Decimal) -> Decimal:
    """Round a weight to 12 decimal places, half to even."""
    return value.quantize(WEIGHT_QUANTUM, rounding=ROUND_HALF_EVEN, context=PLANNER_CONTEXT)


def canonical_decimal(value: Decimal) -> str:
    """Render a finite decimal as the shortest plain text of its value.

    Equal values give equal text whatever their exponent: ``100.00``, ``100`` and ``1E+2``
    all give ``"100"``; ``-0`` gives ``"0"``. Used for hashing, never for display.
    """
    if not value.is_finite():
        raise ValueError(f"cannot render a non-finite decimal: {value}")
    if value.is_zero():
        return "0"
    return format(value.normalize(context=PLANNER_CONTEXT), "f")
