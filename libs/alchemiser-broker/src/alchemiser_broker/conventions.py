"""What every adapter of the port does the same way, whatever carries its calls.

* :func:`check_replace`: a replace names a quantity or a limit price, and the quantity is whole
  (alpaca-py's replace request carries an integer quantity).
* :func:`close_by_order`: closing a position under a ``client_order_id`` is an ordinary market
  order for the whole quantity; a re-run after a crash adopts the order the first run placed
  (the broker refuses the id twice, or nothing is held any more and the id finds it).
"""

from __future__ import annotations

from decimal import Decimal

from alchemiser_broker.exceptions import OrderNotFoundError
from alchemiser_broker.models import BrokerOrder, OrderRequest, OrderSide
from alchemiser_broker.port import BrokerPort

__all__ = ["check_replace", "close_by_order"]


def check_replace(qty: Decimal | None, limit_price: Decimal | None) -> None:
    """Raise ``ValueError`` for a replace without changes or with a fractional quantity."""
    if qty is None and limit_price is None:
        raise ValueError("replace_order needs qty or limit_price")
    if qty is not None and qty != qty.to_integral_value():
        raise ValueError(f"qty={qty}: alpaca-py can only replace whole-share quantities")


def close_by_order(broker: BrokerPort, symbol: str, client_order_id: str) -> BrokerOrder:
    """Close ``symbol`` with a market order under ``client_order_id`` (idempotent).

    The position is read first and the whole of it sold (or bought back) under the id; the
    broker refuses a second order with an id it already has, and ``submit_order`` adopts that
    order, so a re-run after a crash never places a second one. When nothing is held (the
    first run's order closed it), the order under the id is the answer, if there is one.
    """
    position = broker.get_position(symbol)
    if position is None or position.qty == 0:
        existing = broker.get_order_by_client_id(client_order_id)
        if existing is not None:
            return existing
        raise OrderNotFoundError(f"no open position in {symbol} to close")
    side = OrderSide.SELL if position.qty > 0 else OrderSide.BUY
    request = OrderRequest(
        client_order_id=client_order_id, symbol=symbol, side=side, qty=abs(position.qty)
    )
    return broker.submit_order(request)
