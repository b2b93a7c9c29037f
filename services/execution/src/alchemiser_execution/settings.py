"""Settings of the execution service (``ALCHEMISER_*``, ``__`` nesting).

Sections added to :class:`~alchemiser_common.settings.CommonSettings`:

* ``execution`` (``ALCHEMISER_EXECUTION__*``): order policy, fill and buying-power waits,
  re-pegs, safety caps, the plan rules' funding tolerance, how long a plan waits for its
  workflow's trigger, the attempts database and the crash tests' hook.
* ``broker`` and ``alpaca``: the shared broker sections of :mod:`alchemiser_broker.settings`
  (``ALCHEMISER_BROKER__KIND``, ``exchange`` by default, ``ALCHEMISER_BROKER__EXCHANGE_URL``,
  ``ALCHEMISER_BROKER__STREAM``, ``ALCHEMISER_ALPACA__*``: paper by default; live needs
  ``ALCHEMISER_ALPACA__LIVE_TRADING_CONFIRMED=true``). Missing Alpaca keys are reported when
  the broker is built (:func:`~alchemiser_broker.factory.build_broker`).

The metrics server listens on port 9103 by default (:data:`METRICS_PORT`;
``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` overrides it).

The runtime section is the common one: handlers run with no transaction open (database or
Kafka), so neither the batch size nor the transaction timeout depends on how long orders take
to fill. :meth:`ExecutionSettings.check_timing` refuses waits that would keep the consumer
from polling within librdkafka's ``max.poll.interval.ms``.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alchemiser_broker.settings import AlpacaSettings, BrokerSettings
from alchemiser_common.errors import ConfigurationError
from alchemiser_common.observability.settings import ObservabilitySettings, metrics_port_field
from alchemiser_common.runtime.limits import KAFKA_MAX_POLL_INTERVAL_S, MAX_BATCH_HANDLING_S
from alchemiser_common.settings import CommonSettings
from alchemiser_execution.domain.plan_rules import DEFAULT_CASH_TOLERANCE, UNKNOWN_WORKFLOW_WAIT_S

__all__ = [
    "CANCEL_GRACE_S",
    "METRICS_PORT",
    "ExecutionObservability",
    "ExecutionSection",
    "ExecutionSettings",
    "OrderPolicy",
    "phase_timeout_s",
]

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
    cash_tolerance_pct: Decimal = Field(
        default=DEFAULT_CASH_TOLERANCE,
        ge=0,
        le=1,
        description=(
            "Plan rule: a plan's buys may exceed the account's cash plus its sell proceeds by "
            "this fraction; a plan beyond it is dead-lettered (invalid_plan)."
        ),
    )
    workflow_wait_s: float = Field(
        default=UNKNOWN_WORKFLOW_WAIT_S,
        gt=0,
        le=3600,
        description=(
            "How long a plan whose workflow was not seen on workflow.started.v1 is retried, "
            "counted from the plan's occurred_at; older, it is dead-lettered (unknown_workflow)."
        ),
    )
    asset_cache_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description=(
            "How long the broker's answer on an asset (tradable, fractionable) is reused "
            "before it is asked again; 0 asks before every plan."
        ),
    )
    reconcile_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long start-up reconciliation retries an unreachable broker.",
    )
    attempts_database_url: SecretStr | None = Field(
        default=None,
        description="Where the order attempts live. Default: the service database.",
    )
    block_after_submit_file: str | None = Field(
        default=None,
        description=(
            "Test hook for the crash tests (like ALCHEMISER_RUNTIME__PAUSE_AT): after the "
            "first order the broker accepts, write this file and block forever, before the "
            "attempt is recorded as submitted and before the batch commits."
        ),
    )


METRICS_PORT = 9103
"""The default ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` of execution (strategy 9101, portfolio
9102, execution 9103: the three run side by side on one machine without settings)."""


class ExecutionObservability(ObservabilitySettings):
    """The observability section with execution's own metrics port."""

    metrics_port: int = metrics_port_field(METRICS_PORT)


class ExecutionSettings(CommonSettings):
    """Every setting the execution service reads."""

    observability: ExecutionObservability = Field(default_factory=ExecutionObservability)
    execution: ExecutionSection = ExecutionSection()
    broker: BrokerSettings = BrokerSettings()
    alpaca: AlpacaSettings | None = None

    def worst_case_handler_s(self) -> float:
        """Upper bound of one handler run: two order phases, the buying-power wait, slack."""
        section = self.execution
        return 2 * phase_timeout_s(section) + section.buying_power_timeout_s + _HANDLER_SLACK_S

    def check_timing(self) -> None:
        """Raise ``ConfigurationError`` if the waits could keep the consumer from polling.

        A batch stops taking inputs after :data:`MAX_BATCH_HANDLING_S`, but the input started
        last may then run its worst case: together they must stay below librdkafka's max poll
        interval, or the consumer would leave its group mid-execution.
        """
        worst = self.worst_case_handler_s()
        if worst + MAX_BATCH_HANDLING_S >= KAFKA_MAX_POLL_INTERVAL_S:
            raise ConfigurationError(
                "invalid settings ALCHEMISER_EXECUTION__FILL_TIMEOUT_S / REPEG_INTERVAL_S / "
                f"MAX_REPEGS / BUYING_POWER_TIMEOUT_S: the worst-case handler time {worst:.0f} s "
                f"plus the batch budget ({MAX_BATCH_HANDLING_S:.0f} s) exceeds the consumer's "
                f"max poll interval ({KAFKA_MAX_POLL_INTERVAL_S:.0f} s)"
            )


def phase_timeout_s(section: ExecutionSection) -> float:
    """Upper bound of one phase (sells or buys): every limit peg, the market order, grace."""
    limit_rounds = section.max_repegs + 1 if section.order_policy is OrderPolicy.LIMIT else 0
    pegs = limit_rounds * (section.repeg_interval_s + section.fill_poll_interval_s)
    return pegs + section.fill_timeout_s + section.fill_poll_interval_s + CANCEL_GRACE_S
