"""The service's composition root: settings -> broker -> handler -> runtime.

``python -m alchemiser_portfolio`` calls :func:`main`, which runs the shared runtime with
:func:`register_handlers` and :class:`~alchemiser_portfolio.settings.PortfolioSettings`.
Configuration problems found here (no dataset for the simulated broker, an unreadable
dataset) raise :class:`~alchemiser_common.errors.ConfigurationError` naming the variable, so
the process stops at start-up with exit code 2.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from alchemiser_common.broker import BrokerPort
from alchemiser_common.broker.alpaca import AlpacaBroker
from alchemiser_common.broker.simulated import SimulatedBroker
from alchemiser_common.db import create_engine_from_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.events import EventSource
from alchemiser_common.marketdata import DatasetMarketData, InvalidDatasetError
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.handlers import EventHandlerRegistry, HandlerRegistration
from alchemiser_common.runtime.service import ServiceContainer, run_service
from alchemiser_common.settings import load_settings
from alchemiser_portfolio.handlers import SignalGeneratedHandler
from alchemiser_portfolio.settings import BrokerKind, PortfolioSettings

__all__ = ["SERVICE", "build_broker", "event_source", "main", "register_handlers"]

SERVICE = "portfolio"
"""The service's name in ``EventSource`` and its default consumer-group name."""

_DATASET_ENV = "ALCHEMISER_BROKER__SIMULATED__DATASET_DIR"
_log = get_logger("alchemiser.portfolio")


def event_source() -> EventSource:
    """``source`` of the events this service emits: its name and installed version."""
    try:
        package_version = version("alchemiser-portfolio")
    except PackageNotFoundError:  # running from a source tree that is not installed
        package_version = "0+unknown"
    return EventSource(service=SERVICE, version=package_version)


def _dataset(settings: PortfolioSettings) -> DatasetMarketData:
    """The simulated broker's bars, loaded now so a bad dataset stops the start-up."""
    directory = settings.broker.simulated.dataset_dir
    if directory is None:
        raise ConfigurationError(
            f"{_DATASET_ENV} is required with ALCHEMISER_BROKER__KIND=simulated "
            "(the directory of daily bar files the simulated broker prices from)"
        )
    if not directory.is_dir():
        raise ConfigurationError(f"{_DATASET_ENV}={directory}: not a directory")
    dataset = DatasetMarketData(directory)
    try:
        symbols = dataset.symbols
    except InvalidDatasetError as err:
        raise ConfigurationError(f"{_DATASET_ENV}={directory}: {err}") from err
    if not symbols:
        raise ConfigurationError(f"{_DATASET_ENV}={directory}: no bar files in it")
    return dataset


def _simulated_broker(settings: PortfolioSettings, container: ServiceContainer) -> SimulatedBroker:
    """The simulated broker on its database (default: the service's), tables migrated."""
    simulated = settings.broker.simulated
    own_url = settings.database.url.get_secret_value()
    url = own_url if simulated.database_url is None else simulated.database_url.get_secret_value()
    engine = (
        container.engine
        if url == own_url
        else create_engine_from_url(url, application_name=f"{settings.service_name}-simulated")
    )
    broker = SimulatedBroker(
        engine, _dataset(settings), simulated.broker_settings(), clock=container.now
    )
    broker.migrate()
    return broker


def build_broker(settings: PortfolioSettings, container: ServiceContainer) -> BrokerPort:
    """The broker ``settings.broker.kind`` names, ready to read the account."""
    if settings.broker.kind is BrokerKind.ALPACA:
        return AlpacaBroker(settings.require_alpaca())
    return _simulated_broker(settings, container)


def _portfolio_settings(container: ServiceContainer) -> PortfolioSettings:
    """The container's settings, or (on the generic runtime entry point) the environment's."""
    if isinstance(container.settings, PortfolioSettings):
        return container.settings
    return load_settings(PortfolioSettings)


def register_handlers(container: ServiceContainer, registry: EventHandlerRegistry) -> None:
    """Register the ``SignalGenerated`` handler; the broker is built (and checked) now."""
    settings = _portfolio_settings(container)
    broker = build_broker(settings, container)
    handler = SignalGeneratedHandler(
        broker, settings.portfolio.planner_config(), source=event_source()
    )
    _log.info("portfolio ready", broker=settings.broker.kind.value, broker_repr=repr(broker))
    registry.register(
        HandlerRegistration(
            event_type="SignalGenerated",
            handler_factory=lambda: handler,
            metadata={"service": SERVICE, "output": "RebalancePlanned"},
        )
    )


def main() -> int:
    """Run the service until SIGTERM/SIGINT; the process exit code."""
    return run_service(SERVICE, register_handlers, PortfolioSettings)
