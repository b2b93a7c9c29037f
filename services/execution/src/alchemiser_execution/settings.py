"""Settings of the execution service (``ALCHEMISER_*``, ``__`` nesting).

Sections added to :class:`~alchemiser_common.settings.CommonSettings`:

* ``execution`` (``ALCHEMISER_EXECUTION__*``): order policy, fill and buying-power waits,
  re-pegs, safety caps, the attempts database and the crash tests' hook.
* ``broker`` (``ALCHEMISER_BROKER__*``): ``kind`` (``simulated``, the default, or ``alpaca``)
  and the simulated broker's section (``ALCHEMISER_BROKER__SIMULATED__*``).
* ``alpaca`` (``ALCHEMISER_ALPACA__*``): the Alpaca adapter's settings (paper by default; live
  needs ``ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED=true``).

``runtime`` keeps the common fields but changes two defaults: a batch holds one record (a
handler may wait a minute or more for fills) and the transaction timeout is ten minutes.
:meth:`ExecutionSettings.check_timing` refuses waits that could outlive the transaction or
the consumer's poll interval.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alchemiser_common.broker.alpaca_settings import AlpacaSettings
from alchemiser_common.broker.simulated_settings import SimulatedBrokerSettings
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import CommonSettings, RuntimeSettings

__all__ = [
    "CANCEL_GRACE_S",
    "KAFKA_MAX_POLL_INTERVAL_S",
    "BrokerSection",
    "ExecutionRuntimeSettings",
    "ExecutionSection",
    "ExecutionSettings",
    "OrderPolicy",
    "SimulatedSection",
    "phase_timeout_s",
]

#: librdkafka's default ``max.poll.interval.ms`` (5 min): a handler running longer than this
#: makes the consumer leave its group, so the worst-case handler time must stay below it.
KAFKA_MAX_POLL_INTERVAL_S = 300.0
#: Extra time a phase allows after its last deadline for the final cancels to take effect.
CANCEL_GRACE_S = 5.0
#: Slack added to the worst-case handler time for HTTP calls, cancels and database writes.
_HANDLER_SLACK_S = 30.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderPolicy(StrEnum):
    """How orders are placed: market orders, or limit orders inside the spread with re-pegs."""

    MARKET = "market"
    LIMIT = "limit"


class ExecutionSection(_Section):
    """How the service places and follows orders (``ALCHEMISER_EXECUTION__*``)."""

    order_policy: OrderPolicy = OrderPolicy.MARKET
    fill_poll_interval_s: float = Field(default=0.5, gt=0, le=10)
    fill_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="How long a market order may take to fill."
    )
    buying_power_timeout_s: float = Field(
        default=60.0, ge=0, le=600, description="How long buys wait for the sells' proceeds."
    )
    repeg_interval_s: float = Field(
        default=10.0, gt=0, le=120, description="How long a limit order works before a re-peg."
    )
    max_repegs: int = Field(default=2, ge=0, le=5)
    max_spread_pct: Decimal = Field(
        default=Decimal("0.005"),
        gt=0,
        le=1,
        description="A quote wider than this fraction of its midpoint goes straight to market.",
    )
    max_order_value: Decimal = Field(
        default=Decimal(100_000), gt=0, description="Largest value of one order (USD)."
    )
    max_daily_traded_value: Decimal = Field(
        default=Decimal(500_000),
        gt=0,
        description="Circuit breaker: largest value traded per account and UTC day (USD).",
    )
    reconcile_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long start-up reconciliation retries an unreachable broker.",
    )
    attempts_database_url: SecretStr | None = Field(
        default=None,
        description=(
            "Where the order attempts live. Default: the service database on PostgreSQL; "
            "on SQLite a sibling file '<name>-execution.<suffix>', because the runtime holds "
            "the SQLite write lock of the service database while a handler runs."
        ),
    )
    block_after_submit_file: str | None = Field(
        default=None,
        description=(
            "Test hook for the crash tests (like ALCHEMISER_RUNTIME__PAUSE_AT): after the "
            "first order the broker accepts, write this file and block forever, before the "
            "attempt is recorded as submitted and before the batch commits."
        ),
    )


class SimulatedSection(SimulatedBrokerSettings):
    """The simulated broker (``ALCHEMISER_BROKER__SIMULATED__*``): its settings plus where."""

    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "The simulated broker's database. Default: the service database on PostgreSQL; "
            "on SQLite a sibling file '<name>-simulated-broker.<suffix>'."
        ),
    )
    dataset_dir: str | None = Field(
        default=None, description="Directory of the daily-bars dataset the broker prices from."
    )

    def broker_settings(self) -> SimulatedBrokerSettings:
        """The :class:`SimulatedBrokerSettings` part of this section."""
        return SimulatedBrokerSettings(**self.model_dump(exclude={"database_url", "dataset_dir"}))


class BrokerSection(_Section):
    """Which broker the service trades with (``ALCHEMISER_BROKER__*``)."""

    kind: Literal["simulated", "alpaca"] = "simulated"
    simulated: SimulatedSection = SimulatedSection()


class ExecutionRuntimeSettings(RuntimeSettings):
    """The runtime section with execution's defaults: one record per batch, 10 min timeout."""

    batch_size: int = Field(default=1, ge=1, le=10_000)
    transaction_timeout_ms: int = Field(default=600_000, ge=1_000, le=900_000)


class ExecutionSettings(CommonSettings):
    """Every setting the execution service reads."""

    runtime: ExecutionRuntimeSettings = ExecutionRuntimeSettings()
    execution: ExecutionSection = ExecutionSection()
    broker: BrokerSection = BrokerSection()
    alpaca: AlpacaSettings | None = None

    def worst_case_handler_s(self) -> float:
        """Upper bound of one handler run: two order phases, the buying-power wait, slack."""
        section = self.execution
        return 2 * phase_timeout_s(section) + section.buying_power_timeout_s + _HANDLER_SLACK_S

    def check_timing(self) -> None:
        """Raise ``ConfigurationError`` if a handler could outlive its transaction or poll."""
        worst = self.worst_case_handler_s()
        timeout_s = self.runtime.transaction_timeout_ms / 1000
        if worst >= timeout_s:
            raise ConfigurationError(
                f"invalid setting ALCHEMISER_RUNTIME__TRANSACTION_TIMEOUT_MS: "
                f"{self.runtime.transaction_timeout_ms} ms is below the worst-case handler time "
                f"of {worst:.0f} s (from ALCHEMISER_EXECUTION__* waits); raise it or lower them"
            )
        if worst >= KAFKA_MAX_POLL_INTERVAL_S:
            raise ConfigurationError(
                "invalid settings ALCHEMISER_EXECUTION__FILL_TIMEOUT_S / REPEG_INTERVAL_S / "
                f"MAX_REPEGS / BUYING_POWER_TIMEOUT_S: the worst-case handler time {worst:.0f} s "
                f"exceeds the consumer's max poll interval ({KAFKA_MAX_POLL_INTERVAL_S:.0f} s)"
            )


def phase_timeout_s(section: ExecutionSection) -> float:
    """Upper bound of one phase (sells or buys): every limit peg, the market order, grace."""
    limit_rounds = section.max_repegs + 1 if section.order_policy is OrderPolicy.LIMIT else 0
    pegs = limit_rounds * (section.repeg_interval_s + section.fill_poll_interval_s)
    return pegs + section.fill_timeout_s + section.fill_poll_interval_s + CANCEL_GRACE_S
