"""Delivery channels: e-mail over SMTP (STARTTLS) and a Slack-compatible webhook.

A channel sends one :class:`~.messages.Message` and says how it went by what it raises, so
the outbox can keep its at-most-once promise:

* returns -> delivered;
* :class:`DeliveryDeferred` -> certainly **not** delivered, safe to retry: the server could
  not be reached, the connection broke or timed out before the SMTP ``DATA`` command, an
  SMTP ``4xx`` reply, HTTP ``429``/``5xx``, an HTTP connect or write failure;
* :class:`DeliveryRefused` -> not delivered and retrying will not help: an SMTP ``5xx``
  reply, failed authentication, a server without STARTTLS or AUTH when they are needed, an
  HTTP ``4xx`` other than ``429``, an unexpected redirect;
* :class:`DeliveryUncertain` -> may have been delivered: the SMTP connection broke or timed
  out once ``DATA`` was sent, or an HTTP request was sent and no response came back.

**TLS.** With ``starttls`` (the default) the SMTP client upgrades the connection with
STARTTLS, verifying the server's certificate and host name against the system store (or
``ca_file``), before anything else, and refuses to go on when the server does not offer it:
credentials never cross an unencrypted connection unless ``starttls=False`` is set
explicitly (a relay on localhost). The webhook URL decides TLS by its scheme.

**Secrets.** The SMTP password and the webhook URL (its path carries a token) are
``SecretStr``: masked in reprs and in validation errors; error messages name the host and
the status, never them. httpx logs each request's URL at INFO on the ``httpx`` logger, so a
:class:`WebhookChannel` redacts its URL from that logger's records.

**Dedupe downstream.** Every e-mail carries a ``Message-ID`` derived from the notification
id (:func:`email_message_id`), the webhook request an ``Idempotency-Key`` header: a receiver
that dedupes can drop a copy. Each webhook request uses a fresh connection, so a stale
keep-alive connection cannot turn a send into an uncertain one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alchemiser_common.errors import AlchemiserError
from alchemiser_common.observability.logging import get_logger
from alchemiser_ledger.notify.messages import Message, slack_payload

__all__ = [
    "EMAIL",
    "WEBHOOK",
    "Channel",
    "DeliveryDeferred",
    "DeliveryError",
    "DeliveryRefused",
    "DeliveryUncertain",
    "SmtpChannel",
    "SmtpSettings",
    "WebhookChannel",
    "WebhookSettings",
    "email_message_id",
]

EMAIL = "email"
"""The e-mail channel's name (the outbox's ``channel`` column)."""

WEBHOOK = "webhook"
"""The webhook channel's name."""

_REPLY_CHARS = 200  # of a server's reply kept in an error message
_ADDRESS = re.compile(r"^[!-~]+@[!-~]+$")  # printable ASCII, one @, no spaces
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

_log = get_logger("alchemiser.ledger.notify")


class DeliveryError(AlchemiserError):
    """A notification was not (certainly) delivered; the subclass says what to do."""


class DeliveryDeferred(DeliveryError):  # noqa: N818 - named by the outcome it reports
    """Certainly not delivered and worth retrying later."""


class DeliveryRefused(DeliveryError):  # noqa: N818 - named by the outcome it reports
    """Not delivered, and retrying will not help (refused, misconfigured)."""


class DeliveryUncertain(DeliveryError):  # noqa: N818 - named by the outcome it reports
    """The send broke off at a point where the message may have been delivered."""


class Channel(Protocol):
    """Where a notification goes: raises a :class:`DeliveryError` unless delivered."""

    name: str

    def send(self, message: Message, *, message_id: str) -> None:
        """Deliver ``message``; ``message_id`` is stable across retries (for dedupe)."""
        ...


# --- settings ------------------------------------------------------------------------------


def _check_address(value: str) -> str:
    address = parseaddr(value)[1]
    if "\r" in value or "\n" in value or not _ADDRESS.match(address):
        raise ValueError("expected an ASCII e-mail address such as 'Name <a@example.com>'")
    return value


class SmtpSettings(BaseModel):
    """How to reach the SMTP server (submission port 587 with STARTTLS by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0)
    ca_file: str | None = None
    """PEM bundle to trust instead of the system store (a private CA, tests)."""

    @field_validator("sender")
    @classmethod
    def _sender_is_address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("recipients")
    @classmethod
    def _recipients_are_addresses(cls, value: list[str]) -> list[str]:
        return [_check_address(item) for item in value]

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        return self


class WebhookSettings(BaseModel):
    """A Slack-compatible incoming webhook; the URL is a secret (it embeds a token)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretStr
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: SecretStr) -> SecretStr:
        try:
            url = httpx.URL(value.get_secret_value())
        except httpx.InvalidURL:
            raise ValueError("the webhook URL is not a valid URL") from None
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError("the webhook URL must be an http(s) URL with a host")
        return value


# --- e-mail --------------------------------------------------------------------------------


def email_message_id(notification_id: str, sender: str) -> str:
    """The ``Message-ID`` of a notification's e-mail: the same for every retry, unique per
    notification id, on the sender's domain."""
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:16]
    readable = _ID_CHARS.sub("-", notification_id).strip("-")[:64]
    local = f"alchemiser.{readable}.{digest}" if readable else f"alchemiser.{digest}"
    domain = parseaddr(sender)[1].rpartition("@")[2] or "alchemiser.invalid"
    return f"<{local}@{domain}>"


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:_REPLY_CHARS]


class _Conversation:
    """One SMTP session: remembers how far it got, which decides how a failure counts."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext) -> None:
        self.settings = settings
        self.step = "connect"
        self.data_sent = False
        self._context = context
        self._client: smtplib.SMTP | None = None

    def deliver(self, payload: bytes) -> None:
        settings = self.settings
        self._client = client = smtplib.SMTP(
            settings.host, settings.port, timeout=settings.timeout_s
        )
        self.step = "EHLO"
        client.ehlo_or_helo_if_needed()
        if settings.starttls:
            self.step = "STARTTLS"
            client.starttls(context=self._context)
            self.step = "EHLO"
            client.ehlo_or_helo_if_needed()  # STARTTLS forgot the first EHLO (RFC 3207)
        if settings.username is not None and settings.password is not None:
            self.step = "AUTH"
            client.login(settings.username, settings.password.get_secret_value())
        self._envelope(client)
        self.step = "DATA"
        self.data_sent = True
        code, reply = client.data(payload)  # returns (not raises) the final reply
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _envelope(self, client: smtplib.SMTP) -> None:
        self.step = "MAIL FROM"
        code, reply = client.mail(parseaddr(self.settings.sender)[1])
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.settings.sender)
        self.step = "RCPT TO"
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in self.settings.recipients:
            code, reply = client.rcpt(parseaddr(recipient)[1])
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if any(400 <= code < 500 for code, _ in refused.values()):
            code, reply = next(item for item in refused.values() if 400 <= item[0] < 500)
            raise smtplib.SMTPResponseException(code, reply)  # retry the whole message later
        if len(refused) == len(self.settings.recipients):
            code, reply = next(iter(refused.values()))
            raise smtplib.SMTPResponseException(code, reply)
        if refused:
            _log.warning(
                "some recipients refused; sending to the others",
                refused={name: code for name, (code, _) in refused.items()},
            )

    def close(self, *, delivered: bool) -> None:
        client = self._client
        if client is None:
            return
        try:
            if delivered:
                client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the message was accepted; a failed QUIT changes nothing
        finally:
            client.close()


class SmtpChannel:
    """Sends notifications as multipart/alternative e-mail (text and HTML) over SMTP."""

    def __init__(self, settings: SmtpSettings, *, name: str = EMAIL) -> None:
        self.name = name
        self._settings = settings
        self._context = ssl.create_default_context(cafile=settings.ca_file)

    def __repr__(self) -> str:
        return f"SmtpChannel(name={self.name!r}, host={self._settings.host!r})"

    def compose(self, message: Message, *, message_id: str) -> EmailMessage:
        """The e-mail for ``message``: headers, text part and (if any) HTML alternative."""
        settings = self._settings
        email = EmailMessage(policy=SMTP_POLICY)
        email["Subject"] = message.subject
        email["From"] = settings.sender
        email["To"] = ", ".join(settings.recipients)
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = email_message_id(message_id, settings.sender)
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: Message, *, message_id: str) -> None:
        """Deliver over SMTP; raises a :class:`DeliveryError` subclass unless delivered."""
        payload = self.compose(message, message_id=message_id).as_bytes(policy=SMTP_POLICY)
        talk = _Conversation(self._settings, self._context)
        delivered = False
        try:
            talk.deliver(payload)
            delivered = True
        # SMTPException subclasses OSError, so the SMTP classes are matched first
        except smtplib.SMTPResponseException as err:
            raise _from_reply(talk, err.smtp_code, err.smtp_error) from err
        except smtplib.SMTPServerDisconnected as err:
            raise _from_broken(talk, err) from err
        except smtplib.SMTPException as err:  # no STARTTLS / AUTH / usable mechanism
            if talk.data_sent:
                raise _from_broken(talk, err) from err
            raise DeliveryRefused(f"{_where(talk)} at {talk.step}: {err}") from err
        except OSError as err:  # refused, reset, timed out, TLS handshake or certificate
            raise _from_broken(talk, err) from err
        finally:
            talk.close(delivered=delivered)


def _where(talk: _Conversation) -> str:
    return f"SMTP {talk.settings.host}:{talk.settings.port}"


def _from_reply(talk: _Conversation, code: int, reply: bytes | str) -> DeliveryError:
    """A server's reply: ``4xx`` defers, ``5xx`` refuses; anything odd after DATA is uncertain."""
    text = f"{_where(talk)} at {talk.step}: {code} {_reply_text(reply)}"
    if 400 <= code < 500:
        return DeliveryDeferred(text)
    if 500 <= code < 600:
        return DeliveryRefused(text)
    return DeliveryUncertain(text) if talk.data_sent else DeliveryDeferred(text)


def _from_broken(talk: _Conversation, err: BaseException) -> DeliveryError:
    """A broken or timed-out connection: harmless before DATA, uncertain after."""
    text = f"{_where(talk)} at {talk.step}: {type(err).__name__}: {err}"
    return DeliveryUncertain(text) if talk.data_sent else DeliveryDeferred(text)


# --- webhook -------------------------------------------------------------------------------


class _Redactor(logging.Filter):
    """Rewrites records that contain one of the registered secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted webhook url>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _Redactor()


def _register_secret_url(raw: str) -> None:
    url = httpx.URL(raw)
    _REDACTOR.secrets.update({raw, str(url), url.raw_path.decode("ascii", "replace")})
    _REDACTOR.secrets.discard("/")
    _REDACTOR.secrets.discard("")
    httpx_logger = logging.getLogger("httpx")
    if _REDACTOR not in httpx_logger.filters:
        httpx_logger.addFilter(_REDACTOR)


class WebhookChannel:
    """POSTs :func:`~.messages.slack_payload` to a Slack-compatible incoming webhook."""

    def __init__(self, settings: WebhookSettings, *, name: str = WEBHOOK) -> None:
        self.name = name
        self._settings = settings
        _register_secret_url(settings.url.get_secret_value())

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r})"

    def send(self, message: Message, *, message_id: str) -> None:
        """POST the message; raises a :class:`DeliveryError` subclass unless answered 2xx."""
        try:
            with httpx.Client(timeout=self._settings.timeout_s, follow_redirects=False) as client:
                response = client.post(
                    self._settings.url.get_secret_value(),
                    json=slack_payload(message),
                    headers={"Idempotency-Key": message_id},
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            raise DeliveryDeferred(_failure("webhook unreachable", err)) from None
        except (httpx.WriteError, httpx.WriteTimeout) as err:
            raise DeliveryDeferred(_failure("webhook request not sent", err)) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise DeliveryRefused(_failure("webhook URL unusable", err)) from None
        except httpx.HTTPError as err:  # sent, no answer: read error/timeout, protocol error
            raise DeliveryUncertain(_failure("webhook sent without an answer", err)) from None
        _check_status(response)


def _failure(what: str, err: Exception) -> str:
    return f"{what}: {type(err).__name__}: {_REDACTOR.redact(str(err))[:_REPLY_CHARS]}"


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    body = _REDACTOR.redact(_reply_text(response.text))
    text = f"webhook answered HTTP {status}: {body}"
    if status == 429 or status >= 500:
        raise DeliveryDeferred(text)
    raise DeliveryRefused(text)
