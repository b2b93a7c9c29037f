"""The broker port: everything execution and portfolio need from a broker.

Implemented by :class:`~alchemiser_broker.alpaca.AlpacaBroker` (Alpaca's REST API, served
by Alpaca or by the project's paper exchange). Errors raised are the classes of
:mod:`alchemiser_broker.exceptions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

from alchemiser_broker.models import (
    AccountState,
    AssetInfo,
    BrokerOrder,
    BrokerPosition,
    MarketClock,
    OrderRequest,
    Quote,
)

__all__ = ["BrokerPort"]


@runtime_checkable
class BrokerPort(Protocol):
    """What the services ask of a broker; amounts are ``Decimal``, times UTC."""

    def use_session(self, session: date) -> None:
        """Trade in ``session`` from now on (the workflow's session date).

        The paper exchange moves the account's clock there, so quotes, fills and the market
        clock are that day's; a live broker has one clock and ignores it.
        """
        ...

    def get_account(self) -> AccountState:
        """The account's cash, buying power and equity."""
        ...

    def get_positions(self) -> list[BrokerPosition]:
        """All open positions."""
        ...

    def get_position(self, symbol: str) -> BrokerPosition | None:
        """The open position in ``symbol``, or ``None`` when there is none."""
        ...

    def get_latest_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """The latest trade price per symbol; symbols without a price are left out."""
        ...

    def get_quote(self, symbol: str) -> Quote | None:
        """The latest bid/ask of ``symbol``, or ``None`` when there is none."""
        ...

    def get_clock(self) -> MarketClock:
        """Whether the market is open, and its next open and close."""
        ...

    def get_asset(self, symbol: str) -> AssetInfo:
        """Whether ``symbol`` is tradable and fractionable (``OrderNotFoundError`` if unknown)."""
        ...

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place an order, idempotently per ``request.client_order_id``.

        A duplicate ``client_order_id`` returns the existing order. Raises
        ``OrderRejectedError`` on a definite refusal and ``AmbiguousOrderOutcomeError`` when
        the outcome is unknown (resolve with :meth:`get_order_by_client_id`).
        """
        ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order placed under ``client_order_id``, or ``None`` when there is none."""
        ...

    def cancel_order(self, broker_order_id: str) -> None:
        """Request cancellation of an open order.

        Cancelling an already canceled order is a no-op; any other final order (filled,
        expired, rejected) raises ``OrderRejectedError``.
        """
        ...

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> BrokerOrder:
        """Replace an open order's quantity and/or limit price; returns the new order."""
        ...

    def close_position(self, symbol: str, client_order_id: str | None = None) -> BrokerOrder:
        """Liquidate the whole position in ``symbol`` with a market order.

        With a ``client_order_id`` the closing order is idempotent like :meth:`submit_order`.
        """
        ...
