"""Settings of the Alpaca adapter (the ``ALCHEMISER_ALPACA__*`` section of a service).

Paper trading is the default. Live trading needs two deliberate settings: ``paper=false``
*and* ``live_trading_confirmed=true``; anything else refuses to start with a
:class:`~alchemiser_common.errors.ConfigurationError` naming the variable.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from alchemiser_common.errors import ConfigurationError

__all__ = ["LIVE_CONFIRMATION_ENV", "AlpacaSettings"]

LIVE_CONFIRMATION_ENV = "ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED"


class AlpacaSettings(BaseModel):
    """Credentials, endpoint and HTTP policy of the Alpaca adapter; secrets are ``SecretStr``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    secret_key: SecretStr
    paper: bool = True
    live_trading_confirmed: bool = False
    url_override: str | None = Field(
        default=None, description="Trading API base URL (tests, proxies); default Alpaca's."
    )
    data_url_override: str | None = Field(
        default=None, description="Market-data API base URL; default Alpaca's."
    )
    stream_url_override: str | None = Field(
        default=None, description="Trade-updates WebSocket URL; default Alpaca's."
    )
    session_url: str | None = Field(
        default=None,
        description=(
            "The paper exchange's session-clock URL (set by BROKER__KIND=exchange); with it "
            "the adapter moves the account's clock to each workflow's session."
        ),
    )
    data_feed: str | None = Field(
        default=None, description="Market-data feed ('iex', 'sip'); default the account's."
    )
    # alpaca-py sets no timeout at all: a hung connection would hang the service forever.
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Attempts after the first, for reads and for a submit after a transient failure.
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.5, ge=0, le=30)
    # Alpaca's limit window is one minute; never wait longer than that for one 429.
    max_rate_limit_wait_s: float = Field(default=60.0, ge=0, le=300)

    @model_validator(mode="after")
    def _live_needs_confirmation(self) -> Self:
        self.require_trading_mode_allowed()
        return self

    @property
    def is_live(self) -> bool:
        """Whether these settings trade real money."""
        return not self.paper

    def require_trading_mode_allowed(self) -> None:
        """Raise ``ConfigurationError`` when live trading is requested without confirmation."""
        if not self.paper and not self.live_trading_confirmed:
            raise ConfigurationError(
                "live trading requested (ALCHEMISER_ALPACA__PAPER=false) without "
                f"{LIVE_CONFIRMATION_ENV}=true; refusing to start"
            )
