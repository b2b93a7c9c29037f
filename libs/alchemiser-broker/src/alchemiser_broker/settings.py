"""The one broker settings section of every service that talks to a broker.

A service adds two sections to its :class:`~alchemiser_common.settings.CommonSettings`:

* ``broker: BrokerSettings`` (``ALCHEMISER_BROKER__*``) — ``kind`` is ``simulated`` (the
  default) or ``alpaca``; the simulated broker's own settings live under
  ``ALCHEMISER_BROKER__SIMULATED__*`` (its behaviour, its database and its dataset);
* ``alpaca: AlpacaSettings | None`` (``ALCHEMISER_ALPACA__*``) — kept at the top level so one
  secret serves every service and the messages name the right variables. Paper is the
  default; live trading needs ``ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED=true``.

:func:`~alchemiser_broker.factory.build_broker` turns the two into a broker.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.errors import ConfigurationError

__all__ = [
    "ALPACA_KIND_NEEDS_KEYS",
    "DATASET_DIR_ENV",
    "SIMULATED_DATABASE_URL_ENV",
    "AlpacaSettings",
    "BrokerKind",
    "BrokerSettings",
    "SimulatedSettings",
    "require_alpaca",
]

DATASET_DIR_ENV = "ALCHEMISER_BROKER__SIMULATED__DATASET_DIR"
SIMULATED_DATABASE_URL_ENV = "ALCHEMISER_BROKER__SIMULATED__DATABASE_URL"
ALPACA_KIND_NEEDS_KEYS = (
    "ALCHEMISER_BROKER__KIND=alpaca needs ALCHEMISER_ALPACA__API_KEY and "
    "ALCHEMISER_ALPACA__SECRET_KEY; neither is set"
)


class BrokerKind(StrEnum):
    """Which broker a service trades with or reads the account from."""

    SIMULATED = "simulated"
    ALPACA = "alpaca"


class SimulatedSettings(SimulatedBrokerSettings):
    """The simulated broker (``ALCHEMISER_BROKER__SIMULATED__*``): its behaviour plus where.

    ``database_url`` unset means the service database itself. Services that must see the same
    simulated account (portfolio reads it, execution trades on it) must share the database
    and ``account_id``. ``dataset_dir`` is required when the simulated broker is used.
    """

    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the simulated account. Default: the service's own database."
        ),
    )
    dataset_dir: Path | None = Field(
        default=None, description="Directory of the daily-bars dataset the broker prices from."
    )

    def broker_settings(self) -> SimulatedBrokerSettings:
        """The part :class:`~alchemiser_broker.simulated.SimulatedBroker` takes."""
        fields = set(SimulatedBrokerSettings.model_fields)
        return SimulatedBrokerSettings(**self.model_dump(include=fields))


class BrokerSettings(BaseModel):
    """Which broker the service uses (``ALCHEMISER_BROKER__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BrokerKind = BrokerKind.SIMULATED
    simulated: SimulatedSettings = SimulatedSettings()


def require_alpaca(alpaca: AlpacaSettings | None) -> AlpacaSettings:
    """The Alpaca section ``kind=alpaca`` needs; ``ConfigurationError`` naming its variables.

    A service calls it at settings load (portfolio) or when it builds the broker (every
    service, through :func:`~alchemiser_broker.factory.build_broker`).
    """
    if alpaca is None:
        raise ConfigurationError(ALPACA_KIND_NEEDS_KEYS)
    return alpaca
