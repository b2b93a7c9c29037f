"""Settings of the portfolio service (``ALCHEMISER_`` prefix, ``__`` nesting).

Sections added to :class:`~alchemiser_common.settings.CommonSettings`:

* ``portfolio`` — the planner's rules (``ALCHEMISER_PORTFOLIO__CASH_RESERVE_PCT=0.01``, ...) and
  how long a signal waits for the account's previous workflow
  (``ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S=900``, see
  :mod:`alchemiser_portfolio.sequencing`);
* ``broker`` and ``alpaca`` — the shared broker sections of
  :mod:`alchemiser_broker.settings` (``ALCHEMISER_BROKER__KIND``, ``exchange`` by default,
  ``ALCHEMISER_BROKER__EXCHANGE_URL``, ``ALCHEMISER_ALPACA__*``).

The metrics server listens on port 9102 by default (:data:`METRICS_PORT`;
``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` overrides it).

``ALCHEMISER_BROKER__KIND=alpaca`` without credentials stops the process at start-up (at
settings load) with a :class:`~alchemiser_common.errors.ConfigurationError` naming the
missing variables.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alchemiser_broker.settings import AlpacaSettings, BrokerKind, BrokerSettings, require_alpaca
from alchemiser_common.observability.settings import ObservabilitySettings, metrics_port_field
from alchemiser_common.settings import CommonSettings
from alchemiser_portfolio.domain import PlannerConfig

__all__ = [
    "METRICS_PORT",
    "PREVIOUS_WORKFLOW_WAIT_S",
    "PlannerSettings",
    "PortfolioObservability",
    "PortfolioSettings",
]

_DEFAULTS = PlannerConfig()


PREVIOUS_WORKFLOW_WAIT_S = 900.0
"""Default of ``ALCHEMISER_PORTFOLIO__PREVIOUS_WORKFLOW_WAIT_S``: a quarter of an hour, far longer
than a workflow takes from plan to outcome (seconds to a few minutes of order fills), short
enough that a lost outcome fails the next workflow the same session."""


class PlannerSettings(BaseModel):
    """The planner's rules (defaults: :class:`PlannerConfig`'s, the original's) and the wait for
    the account's previous workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash_reserve_pct: Decimal = Field(default=_DEFAULTS.cash_reserve_pct, ge=0, lt=1)
    small_account_threshold: Decimal = Field(default=_DEFAULTS.small_account_threshold, ge=0)
    small_account_min_trade_pct: Decimal = Field(
        default=_DEFAULTS.small_account_min_trade_pct, ge=0, le=1
    )
    min_trade_amount: Decimal = Field(default=_DEFAULTS.min_trade_amount, ge=0)
    weight_sum_min: Decimal = Field(default=_DEFAULTS.weight_sum_min, ge=0)
    weight_sum_max: Decimal = Field(default=_DEFAULTS.weight_sum_max, ge=0)
    previous_workflow_wait_s: float = Field(default=PREVIOUS_WORKFLOW_WAIT_S, gt=0, le=86_400)
    """How long a signal waits for the account's previous workflow to finish before its own
    workflow fails with ``previous_workflow_unfinished``."""

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


METRICS_PORT = 9102
"""The default ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` of portfolio (strategy 9101, portfolio
9102, execution 9103: the three run side by side on one machine without settings)."""


class PortfolioObservability(ObservabilitySettings):
    """The observability section with portfolio's own metrics port."""

    metrics_port: int = metrics_port_field(METRICS_PORT)


class PortfolioSettings(CommonSettings):
    """Everything the portfolio service reads from its environment."""

    service_name: str = Field(default="portfolio", pattern=r"^[a-z][a-z0-9-]*$")
    observability: PortfolioObservability = Field(default_factory=PortfolioObservability)
    portfolio: PlannerSettings = PlannerSettings()
    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None

    @model_validator(mode="after")
    def _alpaca_configured(self) -> Self:
        if self.broker.kind is BrokerKind.ALPACA:
            require_alpaca(self.alpaca)
        return self

    def require_alpaca(self) -> AlpacaSettings:
        """The Alpaca settings (checked present at load; ``ConfigurationError`` otherwise)."""
        return require_alpaca(self.alpaca)
