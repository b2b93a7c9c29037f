"""Settings of the paper exchange (``ALCHEMISER_EXCHANGE__*``).

The exchange is one process: its accounts, positions and orders live in ``database_url``
(SQLite or PostgreSQL) so a restart loses nothing, and it prices every account's session from
the daily bars in ``dataset_dir``. See ``docs/exchange.md`` for the trading rules.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from alchemiser_common.settings import ENV_NESTED_DELIMITER, ENV_PREFIX
from alchemiser_exchange.rules import Costs

__all__ = ["ExchangeProcessSettings", "ExchangeSettings", "TradingRules"]


class TradingRules(BaseModel):
    """How the exchange trades (the part tests change).

    The cost fields (``slippage_bps``, ``commission_*``) default to zero: a frictionless
    exchange, filling at the close and charging nothing (see ``docs/exchange.md``, *Costs*).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    starting_cash: Decimal = Field(
        default=Decimal(100000), ge=0, description="Cash of an account opened on first use."
    )
    auto_open: bool = Field(
        default=True,
        description="Open an account for an unknown API key on its first request.",
    )
    partial_fill_ratio: Decimal | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "None fills marketable orders fully; e.g. 0.5 fills half and leaves the order "
            "partially_filled (the rest rests until canceled, replaced or the session ends)."
        ),
    )
    non_fractionable: frozenset[str] = Field(
        default=frozenset(), description="Symbols whose assets report fractionable=false."
    )
    spread_bps: Decimal = Field(
        default=Decimal(2), ge=0, le=1000, description="Quoted bid/ask spread around the close."
    )
    quote_size: Decimal = Field(default=Decimal(100), gt=0, description="Quoted bid/ask size.")
    session_time: time = Field(
        default=time(15, 50),
        description="The New York time an account's clock reads during its session.",
    )
    rate_limit_per_minute: int = Field(
        default=1000,
        ge=0,
        description=(
            "Requests per API key per minute before HTTP 429 (Alpaca's paper limit is 200); "
            "0 switches the limit off."
        ),
    )
    slippage_bps: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=1000,
        description=(
            "Fills move against the order by this many basis points of the close (a buy "
            "higher, a sell lower; never beyond a limit order's limit). 0: fills at the close."
        ),
    )
    commission_per_share: Decimal = Field(
        default=Decimal(0), ge=0, description="Commission per share filled, in dollars."
    )
    commission_bps: Decimal = Field(
        default=Decimal(0), ge=0, description="Commission in basis points of a fill's notional."
    )
    commission_min: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="Minimum commission per fill when a per-share or bps commission applies.",
    )

    @property
    def costs(self) -> Costs:
        """The cost model of fills (all zero by default: frictionless)."""
        return Costs(
            slippage_bps=self.slippage_bps,
            commission_per_share=self.commission_per_share,
            commission_bps=self.commission_bps,
            commission_min=self.commission_min,
        )


class ExchangeSettings(TradingRules):
    """Where the exchange keeps its state and its prices, plus its trading rules."""

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///exchange.db"),
        description="SQLAlchemy URL of the exchange's accounts, positions and orders.",
    )
    dataset_dir: Path | None = Field(
        default=None, description="Directory of the daily-bar files every session prices from."
    )


class ExchangeProcessSettings(BaseSettings):
    """The ``alchemiser exchange serve`` process: ``ALCHEMISER_EXCHANGE__*`` plus the bind."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
        frozen=True,
    )

    exchange: ExchangeSettings = ExchangeSettings()
