"""Settings of the portfolio service (``ALCHEMISER_`` prefix, ``__`` nesting).

Sections added to :class:`~alchemiser_common.settings.CommonSettings`:

* ``portfolio`` — the planner's rules (``ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT=0.01``, ...);
* ``broker`` — which broker the account is read from: ``ALCHEMISER_BROKER__KIND`` is
  ``simulated`` (default) or ``alpaca``; the simulated broker's own settings live under
  ``ALCHEMISER_BROKER__SIMULATED__*``;
* ``alpaca`` — the shared Alpaca section (``ALCHEMISER_ALPACA__API_KEY``, ``..._SECRET_KEY``,
  ``..._PAPER``, ``..._LIVE_TRADING_CONFIRMED``), kept at the top level like every service's
  so one secret serves them all and the library's messages name the right variables. Paper
  is the default; live trading needs the explicit confirmation.

``ALCHEMISER_BROKER__KIND=alpaca`` without credentials stops the process at start-up with a
:class:`~alchemiser_common.errors.ConfigurationError` naming the missing variables.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from alchemiser_common.broker.alpaca_settings import AlpacaSettings
from alchemiser_common.broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import CommonSettings
from alchemiser_portfolio.domain import PlannerConfig

__all__ = [
    "BrokerKind",
    "BrokerSettings",
    "PlannerSettings",
    "PortfolioSettings",
    "SimulatedSettings",
]

_DEFAULTS = PlannerConfig()


class BrokerKind(StrEnum):
    """Where the account is read from."""

    SIMULATED = "simulated"
    ALPACA = "alpaca"


class PlannerSettings(BaseModel):
    """The planner's rules; the defaults are :class:`PlannerConfig`'s (the original's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash_reserve_pct: Decimal = Field(default=_DEFAULTS.cash_reserve_pct, ge=0, lt=1)
    small_account_threshold: Decimal = Field(default=_DEFAULTS.small_account_threshold, ge=0)
    small_account_min_trade_pct: Decimal = Field(
        default=_DEFAULTS.small_account_min_trade_pct, ge=0, le=1
    )
    min_trade_amount: Decimal = Field(default=_DEFAULTS.min_trade_amount, ge=0)
    weight_sum_min: Decimal = Field(default=_DEFAULTS.weight_sum_min, ge=0)
    weight_sum_max: Decimal = Field(default=_DEFAULTS.weight_sum_max, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.weight_sum_min > self.weight_sum_max:
            raise ValueError(
                f"weight_sum_min {self.weight_sum_min} exceeds weight_sum_max {self.weight_sum_max}"
            )
        return self

    def planner_config(self) -> PlannerConfig:
        """These settings as the domain's :class:`PlannerConfig`."""
        return PlannerConfig(
            cash_reserve_pct=self.cash_reserve_pct,
            small_account_threshold=self.small_account_threshold,
            small_account_min_trade_pct=self.small_account_min_trade_pct,
            min_trade_amount=self.min_trade_amount,
            weight_sum_min=self.weight_sum_min,
            weight_sum_max=self.weight_sum_max,
        )


class SimulatedSettings(SimulatedBrokerSettings):
    """The simulated broker: its behaviour, its database and the bars it prices from.

    ``database_url`` defaults to the service's own database (``ALCHEMISER_DATABASE__URL``).
    The execution service must use the same database (and ``account_id``), or the two will
    see different accounts. ``dataset_dir`` is required when the simulated broker is used.
    """

    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy URL of the simulated account; default the service's."
    )
    dataset_dir: Path | None = Field(
        default=None, description="Directory of daily bar files the simulated prices come from."
    )

    def broker_settings(self) -> SimulatedBrokerSettings:
        """The part :class:`~alchemiser_common.broker.simulated.SimulatedBroker` takes."""
        fields = set(SimulatedBrokerSettings.model_fields)
        return SimulatedBrokerSettings(**self.model_dump(include=fields))


class BrokerSettings(BaseModel):
    """Which broker the service reads the account from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BrokerKind = BrokerKind.SIMULATED
    simulated: SimulatedSettings = SimulatedSettings()


class PortfolioSettings(CommonSettings):
    """Everything the portfolio service reads from its environment."""

    service_name: str = Field(default="portfolio", pattern=r"^[a-z][a-z0-9-]*$")
    portfolio: PlannerSettings = PlannerSettings()
    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None

    @model_validator(mode="after")
    def _alpaca_configured(self) -> Self:
        if self.broker.kind is BrokerKind.ALPACA and self.alpaca is None:
            raise ConfigurationError(
                "ALCHEMISER_BROKER__KIND=alpaca needs ALCHEMISER_ALPACA__API_KEY and "
                "ALCHEMISER_ALPACA__SECRET_KEY; neither is set"
            )
        return self

    def require_alpaca(self) -> AlpacaSettings:
        """The Alpaca settings (checked present at load; ``ConfigurationError`` otherwise)."""
        if self.alpaca is None:
            raise ConfigurationError("ALCHEMISER_ALPACA__API_KEY and _SECRET_KEY are not set")
        return self.alpaca
