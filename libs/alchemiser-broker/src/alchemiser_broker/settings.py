"""The one broker settings section of every service that talks to a broker.

A service adds two sections to its :class:`~alchemiser_common.settings.CommonSettings`:

* ``broker: BrokerSettings`` (``ALCHEMISER_BROKER__*``) — ``kind`` chooses the endpoint the
  one Alpaca adapter talks to: ``exchange`` (the default: the project's paper exchange at
  ``exchange_url``, see ``alchemiser exchange serve``) or ``alpaca`` (Alpaca itself, paper
  unless live trading is confirmed). ``stream`` switches the trade-updates stream on;
* ``alpaca: AlpacaSettings | None`` (``ALCHEMISER_ALPACA__*``) — the API key and secret (and
  the HTTP policy), kept at the top level so one secret serves every service and the
  messages name the right variables. Required with ``kind=alpaca``; with ``kind=exchange``
  unset means the exchange's local identity (:data:`LOCAL_EXCHANGE_KEY_ID`), whose account
  the exchange opens on first use. Live trading needs
  ``ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED=true``.

:func:`~alchemiser_broker.factory.build_broker` turns the two into a broker.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alchemiser_broker.alpaca_settings import AlpacaSettings
from alchemiser_common.errors import ConfigurationError

__all__ = [
    "ALPACA_KIND_NEEDS_KEYS",
    "LOCAL_EXCHANGE_KEY_ID",
    "AlpacaSettings",
    "BrokerKind",
    "BrokerSettings",
    "require_alpaca",
]

ALPACA_KIND_NEEDS_KEYS = (
    "ALCHEMISER_BROKER__KIND=alpaca needs ALCHEMISER_ALPACA__API_KEY and "
    "ALCHEMISER_ALPACA__SECRET_KEY; neither is set"
)
LOCAL_EXCHANGE_KEY_ID = "alchemiser-local"
"""The key id (and secret) used with ``kind=exchange`` when no Alpaca keys are set.

Not a secret: it names an account on a local paper exchange that holds no real money."""


class BrokerKind(StrEnum):
    """Which endpoint the Alpaca adapter talks to."""

    EXCHANGE = "exchange"
    ALPACA = "alpaca"


class BrokerSettings(BaseModel):
    """Which broker the service uses (``ALCHEMISER_BROKER__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BrokerKind = BrokerKind.EXCHANGE
    exchange_url: str = Field(
        default="http://127.0.0.1:8300",
        description="Base URL of the paper exchange (kind=exchange): REST, data and stream.",
    )
    stream: bool = Field(
        default=True,
        description=(
            "Learn of fills from the trade-updates stream (polling only while it is down); "
            "false polls always."
        ),
    )

    @field_validator("exchange_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL like http://127.0.0.1:8300, got {value!r}")
        return value.rstrip("/")

    @property
    def exchange_stream_url(self) -> str:
        """The exchange's trade-updates WebSocket URL."""
        parts = urlsplit(self.exchange_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/stream"

    def adapter_settings(self, alpaca: AlpacaSettings | None) -> AlpacaSettings:
        """The Alpaca adapter's settings for this kind (``ConfigurationError`` naming keys)."""
        if self.kind is BrokerKind.ALPACA:
            return require_alpaca(alpaca)
        local = SecretStr(LOCAL_EXCHANGE_KEY_ID)
        base = alpaca or AlpacaSettings(api_key=local, secret_key=local)
        return base.model_copy(
            update={
                "paper": True,
                "live_trading_confirmed": False,
                "url_override": self.exchange_url,
                "data_url_override": self.exchange_url,
                "stream_url_override": self.exchange_stream_url,
                "session_url": f"{self.exchange_url}/exchange/v1/session",
            }
        )


def require_alpaca(alpaca: AlpacaSettings | None) -> AlpacaSettings:
    """The Alpaca section ``kind=alpaca`` needs; ``ConfigurationError`` naming its variables.

    A service calls it at settings load (portfolio) or when it builds the broker (every
    service, through :func:`~alchemiser_broker.factory.build_broker`).
    """
    if alpaca is None:
        raise ConfigurationError(ALPACA_KIND_NEEDS_KEYS)
    return alpaca
