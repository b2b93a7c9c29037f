"""Read the account through the broker port into the planner's :class:`AccountSnapshot`.

Three reads: the account (cash), the open positions (quantity and current price), and the
latest prices of the symbols still without one — targets that are not held, and positions
whose broker price is missing or not positive. A symbol the broker has no price for is left
without one; the handler reports it (the planner refuses to plan without it).

Errors: transient broker failures (:class:`~alchemiser_common.errors.TransientError`
subclasses such as ``BrokerUnavailableError``) propagate untouched so the runtime retries the
input; other broker errors propagate too, for the handler to turn into a failed workflow. A
position the long-only planner cannot hold (short, repeated symbol) raises
:class:`~alchemiser_portfolio.exceptions.InvalidAccountError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from alchemiser_broker import BrokerPort, BrokerPosition
from alchemiser_portfolio.domain import AccountSnapshot, Position
from alchemiser_portfolio.exceptions import InvalidAccountError

__all__ = ["read_account_snapshot"]


def _position(position: BrokerPosition) -> Position:
    """The planner's view of one broker position: its quantity and a usable price or none."""
    if position.qty < 0:
        raise InvalidAccountError(
            f"short position {position.symbol} (qty {position.qty}): the planner is long-only"
        )
    price = position.current_price if position.current_price > 0 else None
    return Position(qty=position.qty, price=price)


def read_account_snapshot(broker: BrokerPort, target_symbols: Iterable[str]) -> AccountSnapshot:
    """Cash, positions and the prices the planner needs for ``target_symbols``, from ``broker``.

    Latest prices are asked for once, for every target that is not held and every held
    position without a usable price; symbols the broker cannot price are left out.
    """
    account = broker.get_account()
    positions: dict[str, Position] = {}
    for broker_position in broker.get_positions():
        if broker_position.symbol in positions:
            raise InvalidAccountError(f"the broker reported {broker_position.symbol} twice")
        positions[broker_position.symbol] = _position(broker_position)
    unpriced = {symbol for symbol, position in positions.items() if position.price is None} | {
        symbol for symbol in target_symbols if symbol not in positions
    }
    prices: dict[str, Decimal] = {}
    if unpriced:
        latest = broker.get_latest_prices(sorted(unpriced))
        prices = {
            symbol: price
            for symbol, price in latest.items()
            if symbol in unpriced and price.is_finite() and price > 0
        }
    return AccountSnapshot(cash=account.cash, positions=positions, prices=prices)
