"""Where the service's state and broker live: database URLs and the broker adapter.

SQLite caveat: the runtime keeps the service database's write lock (``BEGIN IMMEDIATE``) for
the whole batch, handler included, so anything the handler commits on its own — the attempt
rows, the simulated broker's orders — must live in *another* SQLite file. The defaults below
derive sibling files from the service database's path; on PostgreSQL they share the service
database (row locks do not collide).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from alchemiser_common.broker import BrokerPort
from alchemiser_common.broker.alpaca import AlpacaBroker
from alchemiser_common.broker.simulated import SimulatedBroker
from alchemiser_common.db import create_engine_from_url, normalize_database_url
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.marketdata import DatasetMarketData
from alchemiser_execution.settings import ExecutionSettings

__all__ = ["BuiltBroker", "build_broker", "database_url_for"]


@dataclass(frozen=True, slots=True)
class BuiltBroker:
    """The broker adapter, its name for metrics and logs, and the engine it owns (if any)."""

    broker: BrokerPort
    name: str
    engine: Engine | None = None


def database_url_for(
    configured: SecretStr | None, service_url: str, *, suffix: str, setting: str
) -> str:
    """The URL of a database the handler commits to on its own (attempts, simulated broker).

    ``configured`` wins; otherwise PostgreSQL shares ``service_url`` and an SQLite file gets a
    sibling ``<stem>-<suffix><ext>``. An SQLite URL equal to the service database's, or an
    in-memory one, is refused: it would deadlock on the runtime's write lock.
    """
    service = normalize_database_url(service_url)
    if configured is not None:
        url = configured.get_secret_value()
        parsed = normalize_database_url(url)
        if parsed.drivername.startswith("sqlite") and _same_sqlite_file(parsed.database, service):
            raise ConfigurationError(
                f"invalid setting {setting}: on SQLite it must name a file other than the "
                "service database (the runtime holds that file's write lock during a handler)"
            )
        return url
    if not service.drivername.startswith("sqlite"):
        return service_url
    database = service.database or ""
    if database in {"", ":memory:"} or database.startswith("file::memory:"):
        raise ConfigurationError(
            f"set {setting}: an in-memory SQLite service database has no file to sit beside"
        )
    path = Path(database)
    sibling = path.with_name(f"{path.stem}-{suffix}{path.suffix or '.db'}")
    return service.set(database=str(sibling)).render_as_string(hide_password=False)


def _same_sqlite_file(database: str | None, service: object) -> bool:
    service_db = getattr(service, "database", None)
    if (
        not database
        or not service_db
        or not str(getattr(service, "drivername", "")).startswith("sqlite")
    ):
        return False
    return Path(database).expanduser().resolve() == Path(service_db).expanduser().resolve()


def build_broker(settings: ExecutionSettings, service_url: str) -> BuiltBroker:
    """The broker the settings ask for (migrated, for the simulated one)."""
    if settings.broker.kind == "alpaca":
        if settings.alpaca is None:
            raise ConfigurationError(
                "ALCHEMISER_BROKER__KIND=alpaca needs ALCHEMISER_ALPACA__API_KEY and "
                "ALCHEMISER_ALPACA__SECRET_KEY"
            )
        settings.alpaca.require_trading_mode_allowed()
        name = "alpaca" if settings.alpaca.paper else "alpaca-live"
        return BuiltBroker(AlpacaBroker(settings.alpaca), name)
    section = settings.broker.simulated
    if not section.dataset_dir:
        raise ConfigurationError(
            "ALCHEMISER_BROKER__KIND=simulated needs ALCHEMISER_BROKER__SIMULATED__DATASET_DIR "
            "(the daily-bars dataset the simulated broker prices from)"
        )
    if not Path(section.dataset_dir).is_dir():
        raise ConfigurationError(
            f"invalid setting ALCHEMISER_BROKER__SIMULATED__DATASET_DIR: "
            f"{section.dataset_dir!r} is not a directory"
        )
    url = database_url_for(
        section.database_url,
        service_url,
        suffix="simulated-broker",
        setting="ALCHEMISER_BROKER__SIMULATED__DATABASE_URL",
    )
    engine = create_engine_from_url(url, application_name=f"{settings.service_name}-simbroker")
    broker = SimulatedBroker(
        engine, DatasetMarketData(section.dataset_dir), section.broker_settings()
    )
    broker.migrate()
    return BuiltBroker(broker, "simulated", engine)
