"""Alpaca's order-entry rules as the fake applies them (shape, then trading block, then funds).

Shape errors are 422 like Alpaca's; a buy beyond the cash is 403 ``insufficient buying
power`` and a sell beyond the position 403 ``insufficient qty available for order``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from alchemiser_devtools.fake_alpaca import shapes

if TYPE_CHECKING:
    from alchemiser_devtools.fake_alpaca.state import FakeAlpacaState, Reply

__all__ = ["order_error"]

_INVALID = 40010001
_FORBIDDEN = 40310000


def order_error(
    state: FakeAlpacaState,
    body: dict[str, Any],
    qty: Decimal | None,
    notional: Decimal | None,
    limit_price: Decimal | None,
) -> Reply | None:
    """The error reply for an order the fake must refuse, or ``None`` to accept it."""
    message = _shape_error(state, body, qty, notional, limit_price)
    if message is not None:
        return 422, shapes.error_json(_INVALID, message)
    if state.trading_blocked:
        return 403, shapes.error_json(_FORBIDDEN, "account is blocked from trading")
    return _funds_error(state, body, qty, notional, limit_price)


def _shape_error(
    state: FakeAlpacaState,
    body: dict[str, Any],
    qty: Decimal | None,
    notional: Decimal | None,
    limit_price: Decimal | None,
) -> str | None:
    missing = [k for k in ("symbol", "side", "type", "time_in_force") if not body.get(k)]
    if missing:
        return f"{missing[0]} is required"
    symbol, side, kind = str(body["symbol"]), body["side"], body["type"]
    amount = qty if qty is not None else notional
    fractional = qty is not None and qty != qty.to_integral_value()
    problems = (
        (
            side not in ("buy", "sell") or kind not in ("market", "limit"),
            f"unsupported side/type {side}/{kind}",
        ),
        ((qty is None) == (notional is None), "qty or notional is required, not both"),
        (amount is not None and amount <= 0, "qty/notional must be > 0"),
        (
            kind == "limit" and (limit_price is None or notional is not None),
            "limit orders need limit_price and qty",
        ),
        (symbol not in state.prices, f'asset "{symbol}" not found'),
        (
            fractional and symbol in state.non_fractionable,
            "fractional orders are not supported for this asset",
        ),
    )
    return next((message for failed, message in problems if failed), None)


def _funds_error(
    state: FakeAlpacaState,
    body: dict[str, Any],
    qty: Decimal | None,
    notional: Decimal | None,
    limit_price: Decimal | None,
) -> Reply | None:
    symbol = str(body["symbol"])
    price = limit_price or state.prices[symbol]
    if body["side"] == "buy":
        cost = notional if notional is not None else (qty or Decimal(0)) * price
        if cost > state.cash:
            return 403, shapes.error_json(_FORBIDDEN, "insufficient buying power")
        return None
    held = state.positions[symbol].qty if symbol in state.positions else Decimal(0)
    wanted = qty if qty is not None else (notional or Decimal(0)) / price
    if wanted > held:
        return 403, shapes.error_json(
            _FORBIDDEN,
            f"insufficient qty available for order (requested: {wanted}, available: {held})",
        )
    return None
