"""The ledger's composition root: settings -> store, broker, channels -> handlers and sender.

The factories here are the ones the service declaration (:mod:`alchemiser_ledger.service`)
names; the runtime calls them at start-up with the loaded
:class:`~alchemiser_ledger.settings.LedgerSettings`. The signal handler's factory migrates the
ledger's tables before anything is consumed. ``ALCHEMISER_BROKER__KIND=alpaca`` without keys
stops the process at settings load, naming the variables.
"""

from __future__ import annotations

from collections.abc import Mapping

from alchemiser_broker import BrokerPort
from alchemiser_broker.factory import build_broker
from alchemiser_common.observability.logging import get_logger
from alchemiser_common.runtime.declaration import BackgroundTask, ServiceContainer
from alchemiser_ledger.adapters.store import LedgerStore
from alchemiser_ledger.handlers import OutcomeHandler, SettledHandler, SignalHandler
from alchemiser_ledger.notify import Channel, OutboxSender, SmtpChannel, WebhookChannel
from alchemiser_ledger.settings import LedgerSettings, NotifySettings

__all__ = [
    "account_broker",
    "build_outcome_handler",
    "build_sender",
    "build_settled_handler",
    "build_signal_handler",
    "channels_for",
]

_log = get_logger("alchemiser.ledger")


def account_broker(settings: LedgerSettings) -> BrokerPort:
    """The broker the account is read from (no trade-updates stream)."""
    return build_broker(
        settings.broker.model_copy(update={"stream": False}), settings.alpaca
    ).broker


def channels_for(settings: NotifySettings) -> Mapping[str, Channel]:
    """The configured notification channels by name (``email``, ``webhook``)."""
    channels: dict[str, Channel] = {}
    if settings.smtp is not None:
        channels["email"] = SmtpChannel(settings.smtp)
    if settings.webhook is not None:
        channels["webhook"] = WebhookChannel(settings.webhook)
    return channels


def build_signal_handler(container: ServiceContainer[LedgerSettings]) -> SignalHandler:
    """The ``SignalGenerated`` handler; the ledger's tables are migrated now."""
    LedgerStore(container.engine).migrate()
    settings = container.settings
    _log.info(
        "ledger ready",
        broker=settings.broker.kind.value,
        channels=settings.notify.channels() or "none (nothing is sent)",
    )
    return SignalHandler(account_broker(settings))


def build_settled_handler(container: ServiceContainer[LedgerSettings]) -> SettledHandler:
    """The ``TradeExecuted`` handler."""
    settings = container.settings
    return SettledHandler(
        LedgerStore(container.engine),
        account_broker(settings),
        signal_wait_s=settings.ledger.signal_wait_s,
    )


def build_outcome_handler(container: ServiceContainer[LedgerSettings]) -> OutcomeHandler:
    """The handler of ``WorkflowCompleted`` and ``WorkflowFailed``."""
    settings = container.settings
    return OutcomeHandler(
        LedgerStore(container.engine),
        account_broker(settings),
        channels=settings.notify.channels(),
        signal_wait_s=settings.ledger.signal_wait_s,
        settled_wait_s=settings.ledger.settled_wait_s,
    )


def build_sender(container: ServiceContainer[LedgerSettings]) -> BackgroundTask:
    """The outbox sender, run beside the handlers (it never blocks them)."""
    notify = container.settings.notify
    sender = OutboxSender(
        container.engine,
        channels_for(notify),
        now=container.now,
        backoff_initial_s=notify.backoff_initial_s,
        backoff_max_s=notify.backoff_max_s,
        max_attempts=notify.max_attempts,
        poll_interval_s=notify.poll_interval_s,
    )
    return sender.run
