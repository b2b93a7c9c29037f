"""Settings of the ledger service (``ALCHEMISER_`` prefix, ``__`` nesting).

Sections added to :class:`~alchemiser_common.settings.CommonSettings`:

* ``ledger`` — how long a settled or outcome event waits for the workflow's signal
  (``ALCHEMISER_LEDGER__SIGNAL_WAIT_S=300``) and an outcome for the workflow's settled orders
  (``ALCHEMISER_LEDGER__SETTLED_WAIT_S=120``) before it is booked with what is there;
* ``notify`` — the notification channels: e-mail over SMTP (``ALCHEMISER_NOTIFY__SMTP__HOST``,
  ``__PORT`` (587), ``__STARTTLS`` (true), ``__USERNAME``, ``__PASSWORD`` (from a secret),
  ``__SENDER``, ``__RECIPIENTS`` (a JSON list)) and a Slack-compatible webhook
  (``ALCHEMISER_NOTIFY__WEBHOOK__URL``, a secret); neither is required (no channel: nothing
  is sent, the ledger still keeps its books), and the sender's retry schedule;
* ``broker`` and ``alpaca`` — the shared broker sections of :mod:`alchemiser_broker.settings`:
  the account is read from there after each workflow.

The metrics server listens on port 9104 by default (:data:`METRICS_PORT`).
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from alchemiser_broker.settings import AlpacaSettings, BrokerKind, BrokerSettings, require_alpaca
from alchemiser_common.observability.settings import ObservabilitySettings, metrics_port_field
from alchemiser_common.settings import CommonSettings
from alchemiser_ledger.notify.channels import SmtpSettings, WebhookSettings

__all__ = [
    "METRICS_PORT",
    "LedgerObservability",
    "LedgerOptions",
    "LedgerSettings",
    "NotifySettings",
]

METRICS_PORT = 9104
"""The default ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` of the ledger (strategy 9101,
portfolio 9102, execution 9103)."""


class LedgerOptions(BaseModel):
    """How long the ledger waits for the events a workflow's later events depend on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal_wait_s: float = Field(default=300.0, gt=0, le=86_400)
    """A settled or outcome event waits this long for its workflow's signal (the targets
    the fills are attributed by); after it, fills go to the unattributed bucket."""
    settled_wait_s: float = Field(default=120.0, gt=0, le=86_400)
    """A ``workflow.completed.v1`` that placed orders waits this long for its settled
    orders, so the notification lists them and the snapshot follows the fills."""
    database_url: SecretStr | None = None
    """Where the ``alchemiser ledger`` commands find the ledger's database
    (``ALCHEMISER_LEDGER__DATABASE_URL``, as ``make dev``'s ``stack.env`` sets it); the
    service itself uses ``ALCHEMISER_DATABASE__URL`` and ignores this."""


class NotifySettings(BaseModel):
    """Where notifications go and how their sending is retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp: SmtpSettings | None = None
    webhook: WebhookSettings | None = None
    backoff_initial_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=50, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)

    def channels(self) -> list[str]:
        """The configured channel names (``email``, ``webhook``)."""
        return [
            name for name, setting in (("email", self.smtp), ("webhook", self.webhook)) if setting
        ]


class LedgerObservability(ObservabilitySettings):
    """The observability section with the ledger's own metrics port."""

    metrics_port: int = metrics_port_field(METRICS_PORT)


class LedgerSettings(CommonSettings):
    """Everything the ledger service reads from its environment."""

    service_name: str = Field(default="ledger", pattern=r"^[a-z][a-z0-9-]*$")
    observability: LedgerObservability = Field(default_factory=LedgerObservability)
    ledger: LedgerOptions = LedgerOptions()
    notify: NotifySettings = NotifySettings()
    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None

    @model_validator(mode="after")
    def _alpaca_configured(self) -> Self:
        if self.broker.kind is BrokerKind.ALPACA:
            require_alpaca(self.alpaca)
        return self
