"""The one broker factory: a service's broker settings -> a ready :class:`BrokerPort`.

Every service that talks to a broker (portfolio reads the account, execution trades) builds it
here from its ``broker`` and ``alpaca`` sections (:mod:`alchemiser_broker.settings`):

* ``kind=alpaca`` -> :class:`~alchemiser_broker.alpaca.AlpacaBroker` (paper unless live
  trading is confirmed), named ``alpaca`` or ``alpaca-live`` for metrics and logs;
* ``kind=simulated`` -> :class:`~alchemiser_broker.simulated.SimulatedBroker` over the
  dataset in ``ALCHEMISER_BROKER__SIMULATED__DATASET_DIR`` (loaded now, so a missing or
  malformed dataset stops the start-up) and its database, tables migrated.

The simulated broker's tables live in ``ALCHEMISER_BROKER__SIMULATED__DATABASE_URL``, by
default in the service database itself (its engine reused). The runtime holds no transaction
while a handler runs, so a handler's own short transactions (orders, attempts) never wait for
it, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from alchemiser_broker.port import BrokerPort
from alchemiser_broker.settings import (
    DATASET_DIR_ENV,
    AlpacaSettings,
    BrokerKind,
    BrokerSettings,
    SimulatedSettings,
    require_alpaca,
)
from alchemiser_broker.simulated import SimulatedBroker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_marketdata import DatasetMarketData, InvalidDatasetError

__all__ = ["BuiltBroker", "build_broker"]


@dataclass(frozen=True, slots=True)
class BuiltBroker:
    """The broker adapter, its name for metrics and logs, and the engine it owns (if any)."""

    broker: BrokerPort
    name: str
    engine: Engine | None = None


def build_broker(
    settings: BrokerSettings,
    alpaca: AlpacaSettings | None,
    *,
    service_name: str,
    service_url: str,
    service_engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BuiltBroker:
    """The broker ``settings.kind`` names, ready to use (the simulated one migrated).

    ``service_url`` is the service database's URL; ``service_engine`` (optional) its engine,
    reused when the simulated broker's tables live in that very database. ``clock`` stamps
    the simulated broker's orders and market clock (default: the wall clock). Configuration
    problems raise ``ConfigurationError`` naming the variable.
    """
    if settings.kind is BrokerKind.ALPACA:
        return _alpaca_broker(require_alpaca(alpaca))
    return _simulated_broker(
        settings.simulated,
        service_name=service_name,
        service_url=service_url,
        service_engine=service_engine,
        clock=clock,
    )


def _alpaca_broker(alpaca: AlpacaSettings) -> BuiltBroker:
    # imported here: alpaca-py (and the pandas it loads) costs a second at start-up, and a
    # service on the simulated broker never needs it
    from alchemiser_broker.alpaca import AlpacaBroker

    alpaca.require_trading_mode_allowed()
    name = "alpaca" if alpaca.paper else "alpaca-live"
    return BuiltBroker(AlpacaBroker(alpaca), name)


def _dataset(directory: Path | None) -> DatasetMarketData:
    """The simulated broker's bars, loaded now so a bad dataset stops the start-up."""
    if directory is None:
        raise ConfigurationError(
            f"{DATASET_DIR_ENV} is required with ALCHEMISER_BROKER__KIND=simulated "
            "(the directory of daily bar files the simulated broker prices from)"
        )
    if not directory.is_dir():
        raise ConfigurationError(f"invalid setting {DATASET_DIR_ENV}={directory}: not a directory")
    dataset = DatasetMarketData(directory)
    try:
        symbols = dataset.symbols
    except InvalidDatasetError as err:
        raise ConfigurationError(f"invalid setting {DATASET_DIR_ENV}={directory}: {err}") from err
    if not symbols:
        raise ConfigurationError(
            f"invalid setting {DATASET_DIR_ENV}={directory}: no bar files in it"
        )
    return dataset


def _simulated_broker(
    section: SimulatedSettings,
    *,
    service_name: str,
    service_url: str,
    service_engine: Engine | None,
    clock: Callable[[], datetime] | None,
) -> BuiltBroker:
    dataset = _dataset(section.dataset_dir)
    url = service_url if section.database_url is None else section.database_url.get_secret_value()
    owned: Engine | None = None
    if service_engine is not None and url == service_url:
        engine = service_engine
    else:
        engine = owned = create_engine_from_url(
            url, application_name=f"{service_name}-simulated-broker"
        )
    behaviour = section.broker_settings()
    broker = (
        SimulatedBroker(engine, dataset, behaviour)
        if clock is None
        else SimulatedBroker(engine, dataset, behaviour, clock=clock)
    )
    broker.migrate()
    return BuiltBroker(broker, "simulated", owned)
