"""The paper exchange: Alpaca's trading API, offline, over a dataset of daily bars.

Run it with ``alchemiser exchange serve``; point the services' Alpaca adapter at it
(``ALCHEMISER_BROKER__KIND=exchange``). :class:`Exchange` is the core (accounts, session
clocks, the order book), :func:`create_app` its HTTP/WebSocket API and
:class:`ExchangeServer` runs it in a thread for tests.
"""

from alchemiser_exchange.book import Exchange, OrderSpec, account_number_for
from alchemiser_exchange.history import EquityPoint
from alchemiser_exchange.server import ExchangeServer, build_exchange
from alchemiser_exchange.settings import ExchangeSettings, TradingRules

__all__ = [
    "EquityPoint",
    "Exchange",
    "ExchangeServer",
    "ExchangeSettings",
    "OrderSpec",
    "TradingRules",
    "account_number_for",
    "build_exchange",
]
