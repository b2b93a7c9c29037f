"""The one broker factory: a service's broker settings -> a ready Alpaca adapter.

Every service that talks to a broker (portfolio reads the account, execution trades) builds it
here from its ``broker`` and ``alpaca`` sections (:mod:`alchemiser_broker.settings`). There is
one adapter, :class:`~alchemiser_broker.alpaca.AlpacaBroker`; ``kind`` only chooses where it
points:

* ``kind=exchange`` -> the project's paper exchange at ``exchange_url`` (named ``exchange``);
* ``kind=alpaca`` -> Alpaca, paper unless live trading is confirmed (``alpaca`` or
  ``alpaca-live``).

With ``stream=true`` the result also carries the trade-updates feed (not started: the caller
starts it when it wants fills pushed, as execution does).
"""

from __future__ import annotations

from dataclasses import dataclass

from alchemiser_broker.port import BrokerPort
from alchemiser_broker.settings import AlpacaSettings, BrokerKind, BrokerSettings
from alchemiser_broker.stream import TradeUpdatesFeed

__all__ = ["BuiltBroker", "build_broker"]


@dataclass(frozen=True, slots=True)
class BuiltBroker:
    """The broker adapter, its name for metrics and logs, and its trade-updates feed."""

    broker: BrokerPort
    name: str
    updates: TradeUpdatesFeed | None = None


def build_broker(settings: BrokerSettings, alpaca: AlpacaSettings | None) -> BuiltBroker:
    """The adapter for ``settings.kind``; ``ConfigurationError`` names a missing variable."""
    # imported here: alpaca-py (and the pandas it loads) costs a second at start-up
    from alchemiser_broker.alpaca import AlpacaBroker

    effective = settings.adapter_settings(alpaca)
    effective.require_trading_mode_allowed()
    if settings.kind is BrokerKind.EXCHANGE:
        name = "exchange"
    else:
        name = "alpaca" if effective.paper else "alpaca-live"
    updates = None
    if settings.stream:
        updates = TradeUpdatesFeed(
            effective.api_key.get_secret_value(),
            effective.secret_key.get_secret_value(),
            paper=effective.paper,
            url=effective.stream_url_override,
        )
    return BuiltBroker(AlpacaBroker(effective), name, updates)
