"""Notifications of the ledger service: what they say, where they go, and the outbox.

* :mod:`.messages` renders a workflow's end and a month's P&L as text, HTML and a Slack
  payload (pure);
* :mod:`.channels` delivers a message by e-mail (SMTP with STARTTLS) or to a webhook, and
  says by its exception whether a failed send may be retried;
* :mod:`.outbox` queues a notification in the handler's transaction and sends each row at
  most once (a crash mid-send leaves it ``uncertain``, never sent twice).
"""

from __future__ import annotations

from alchemiser_ledger.notify.channels import (
    EMAIL,
    WEBHOOK,
    Channel,
    DeliveryDeferred,
    DeliveryError,
    DeliveryRefused,
    DeliveryUncertain,
    SmtpChannel,
    SmtpSettings,
    WebhookChannel,
    WebhookSettings,
    email_message_id,
)
from alchemiser_ledger.notify.messages import (
    SLACK_BLOCK_TEXT_LIMIT,
    AccountLine,
    Message,
    MonthlyNotice,
    OrderLine,
    Outcome,
    PositionLine,
    WorkflowNotice,
    format_money,
    render_monthly,
    render_workflow,
    slack_payload,
)
from alchemiser_ledger.notify.outbox import (
    DeliveryOutcome,
    NotificationStatus,
    OutboxSender,
    queue,
)

__all__ = [
    "EMAIL",
    "SLACK_BLOCK_TEXT_LIMIT",
    "WEBHOOK",
    "AccountLine",
    "Channel",
    "DeliveryDeferred",
    "DeliveryError",
    "DeliveryOutcome",
    "DeliveryRefused",
    "DeliveryUncertain",
    "Message",
    "MonthlyNotice",
    "NotificationStatus",
    "OrderLine",
    "OutboxSender",
    "Outcome",
    "PositionLine",
    "SmtpChannel",
    "SmtpSettings",
    "WebhookChannel",
    "WebhookSettings",
    "WorkflowNotice",
    "email_message_id",
    "format_money",
    "queue",
    "render_monthly",
    "render_workflow",
    "slack_payload",
]
