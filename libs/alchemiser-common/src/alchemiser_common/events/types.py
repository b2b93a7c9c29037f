"""Value types shared by every event: fixed-scale Decimals, UTC timestamps, checked strings.

Money, quantities and weights are ``Decimal`` with one fixed scale per kind. On validation a
value is quantized to its kind's scale with ``ROUND_HALF_EVEN`` (banker's rounding), so the
Avro ``decimal`` logical type (bytes, same precision and scale) stores it exactly and a round
trip returns an equal Decimal with the same exponent. NaN, infinities and values that need
more than the kind's precision are rejected; negative zero becomes zero.

=========  =========  =====  ==================================================
alias      precision  scale  used for
=========  =========  =====  ==================================================
Money      28         6      cash, values, trade amounts, prices
Quantity   28         9      share quantities (Alpaca fractional shares)
Weight     28         12     portfolio weights, weight differences, percentages
=========  =========  =====  ==================================================

The :class:`DecimalSpec` object sits in each alias's ``Annotated`` metadata, so tools (the
schema conformance test, serde) can read the precision and scale from the model field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints

__all__ = [
    "MONEY",
    "QUANTITY",
    "WEIGHT",
    "ClientOrderId",
    "DecimalSpec",
    "Money",
    "NonEmptyStr",
    "Quantity",
    "Sha256Hex",
    "Symbol",
    "UtcDatetime",
    "Weight",
    "decimal_spec_of",
    "quantize",
]


@dataclass(frozen=True, slots=True)
class DecimalSpec:
    """Precision and scale of one kind of Decimal, as in the Avro ``decimal`` logical type."""

    name: str
    precision: int
    scale: int
    exponent: Decimal = field(init=False, repr=False, compare=False)
    """The quantum ``10 ** -scale`` that values are quantized to."""
    context: Context = field(init=False, repr=False, compare=False)
    """The context quantizing uses: the spec's precision, half-even, invalid results trap."""

    def __post_init__(self) -> None:
        # made once per spec: every validated Money, Quantity and Weight is quantized with them
        object.__setattr__(self, "exponent", Decimal(1).scaleb(-self.scale))
        context = Context(prec=self.precision, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
        object.__setattr__(self, "context", context)

    def __call__(self, value: Decimal) -> Decimal:
        """Quantize ``value`` to this spec (used as the pydantic after-validator)."""
        return quantize(value, self)


MONEY = DecimalSpec("money", precision=28, scale=6)
QUANTITY = DecimalSpec("quantity", precision=28, scale=9)
WEIGHT = DecimalSpec("weight", precision=28, scale=12)


def quantize(value: Decimal, spec: DecimalSpec) -> Decimal:
    """Round ``value`` half-even to ``spec.scale`` places; raise ``ValueError`` if impossible.

    Rejects NaN and infinities and values whose digits exceed ``spec.precision``.
    """
    if not value.is_finite():
        raise ValueError(f"{spec.name} must be a finite number, got {value}")
    try:
        result = value.quantize(spec.exponent, context=spec.context)
    except InvalidOperation as err:
        raise ValueError(
            f"{spec.name} {value} does not fit precision {spec.precision} at scale {spec.scale}"
        ) from err
    return result.copy_abs() if result.is_zero() else result


def decimal_spec_of(metadata: list[object] | tuple[object, ...]) -> DecimalSpec | None:
    """Return the :class:`DecimalSpec` in a field's ``Annotated`` metadata, if any."""
    for item in metadata:
        if isinstance(item, DecimalSpec):
            return item
        inner = getattr(item, "func", None)
        if isinstance(inner, DecimalSpec):
            return inner
    return None


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Money = Annotated[Decimal, AfterValidator(MONEY)]
"""Amount of money in the account currency (USD): precision 28, scale 6."""

Quantity = Annotated[Decimal, AfterValidator(QUANTITY)]
"""Number of shares: precision 28, scale 9."""

Weight = Annotated[Decimal, AfterValidator(WEIGHT)]
"""Fraction of a portfolio (1 = 100 %): precision 28, scale 12."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware instant, normalised to UTC; naive datetimes are rejected."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
"""A string with at least one character."""

Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9./-]{0,19}$")]
"""An upper-case ticker symbol such as ``SPY`` or ``BRK.B``."""

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A lower-case hexadecimal SHA-256 digest."""

ClientOrderId = Annotated[str, StringConstraints(min_length=1, max_length=48)]
"""An Alpaca ``client_order_id``: at most 48 characters (the older documented limit)."""
