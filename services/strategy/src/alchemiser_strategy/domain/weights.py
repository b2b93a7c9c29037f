"""Exact weights: fractions inside the domain, Decimals that sum to exactly 1 at its edge.

Rule: each weight is rounded half-even to ``places`` decimals, zero weights are dropped, and
the rounding residue (``1 - sum``) goes to the largest weight; among equal largest weights the
alphabetically first symbol takes it. The result is deterministic and sums to exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from types import MappingProxyType

__all__ = ["WEIGHT_PLACES", "to_decimal_weights"]

#: Decimal places of published weights: 1e-8 of a $10M account is $0.10.
WEIGHT_PLACES = 8

_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)


def to_decimal_weights(
    weights: Mapping[str, Fraction], places: int = WEIGHT_PLACES
) -> Mapping[str, Decimal]:
    """Round positive fractional weights (any positive total) to Decimals summing to exactly 1.

    The weights are normalised by their total first. Raises ``ValueError`` for an empty
    mapping, a negative weight or a zero total.
    """
    if not weights:
        raise ValueError("cannot normalise an empty set of weights")
    if any(value < 0 for value in weights.values()):
        raise ValueError("weights must not be negative")
    total = sum(weights.values(), Fraction(0))
    if total <= 0:
        raise ValueError("weights must have a positive total")
    quantum = Decimal(1).scaleb(-places)
    rounded: dict[str, Decimal] = {}
    for symbol, value in weights.items():
        share = value / total
        exact = _CONTEXT.divide(Decimal(share.numerator), Decimal(share.denominator))
        amount = exact.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_CONTEXT)
        if amount > 0:
            rounded[symbol] = amount
    if not rounded:
        # Every weight rounded to zero (many tiny shares): give everything to the largest one.
        largest = min(weights, key=lambda s: (-weights[s], s))
        return MappingProxyType({largest: Decimal(1).quantize(quantum)})
    residue = Decimal(1) - sum(rounded.values(), Decimal(0))
    if residue:
        largest = min(rounded, key=lambda s: (-rounded[s], s))
        rounded[largest] += residue
    return MappingProxyType(dict(sorted(rounded.items())))
