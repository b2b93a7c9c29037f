"""The notification channels against real servers on 127.0.0.1, through the outbox.

* SMTP: an ``aiosmtpd`` server in its own process, with STARTTLS required (a self-signed
  certificate made here, trusted through ``SmtpSettings.ca_file``) and AUTH checked by an
  authenticator; it writes every accepted mail (and every AUTH attempt, with whether the
  connection was encrypted) to a folder the test reads.
* Webhook: an ``http.server`` on a thread that answers with the status the test sets.

Every network wait is bounded by a timeout of a few seconds.
"""

from __future__ import annotations

import email
import email.policy
import io
import ipaddress
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import Engine

from alchemiser_common.db import as_utc, create_engine_from_url
from alchemiser_common.observability import configure_logging
from alchemiser_ledger.adapters.schema import metadata, notification_table
from alchemiser_ledger.notify import (
    Channel,
    DeliveryDeferred,
    DeliveryRefused,
    Message,
    OutboxSender,
    SmtpChannel,
    SmtpSettings,
    WebhookChannel,
    WebhookSettings,
    email_message_id,
    queue,
)

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
USERNAME = "ledger-bot"
PASSWORD = "pw-Zq8v1xK3-never-logged"
TOKEN = "XOXB-T000-B000-webhook-token-never-logged"
SENDER = "Alchemiser <alchemiser@example.test>"
RECIPIENTS = ["ops@example.test", "Trader <trader@example.test>"]
T0 = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
MESSAGE = Message(
    subject="Alchemiser: workflow completed for account acct-7 on 2024-03-01 (1 order)",
    text="Workflow completed\nSPY  buy  10\n",
    html="<h2>Workflow completed</h2><p>SPY buy 10</p>",
)
START_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 3.0

SERVER_SCRIPT = r"""
import itertools, json, os, ssl, sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

config = json.loads(sys.argv[1])
out = Path(config["out"])
password = os.environ["TEST_SMTP_PASSWORD"].encode()
counter = itertools.count(1)


def write(name, data):
    (out / (name + ".tmp")).write_bytes(data)
    (out / (name + ".tmp")).rename(out / name)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        number = next(counter)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        write(f"{number:04d}.json", json.dumps(meta).encode())
        write(f"{number:04d}.eml", envelope.original_content)
        if config.get("crash_after_data"):
            os._exit(3)  # the mail is stored, the client never hears 250
        return config.get("data_reply", "250 2.0.0 OK")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == config["username"].encode()
        and auth_data.password == password
    )
    with (out / "auth.jsonl").open("a") as log:
        log.write(json.dumps({"mechanism": mechanism, "tls": session.ssl is not None, "ok": ok}))
        log.write("\n")
    return AuthResult(success=ok, handled=False)  # the server answers 535 itself


tls = None
if config.get("cert"):
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(config["cert"], config["key"])
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=config["port"],
    server_hostname="localhost",
    ready_timeout=5,
    tls_context=tls,
    require_starttls=tls is not None,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=tls is not None,
)
controller.start()
print("READY", flush=True)
sys.stdin.read()  # until the test closes our stdin
controller.stop()
"""


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


class SmtpServer:
    """One aiosmtpd process and the folder it writes mails into."""

    def __init__(self, port: int, folder: Path, config: dict[str, Any]) -> None:
        self.port = port
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        full = {"port": port, "out": str(folder), "username": USERNAME, **config}
        self._stderr = (folder / "server.stderr").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, json.dumps(full)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "TEST_SMTP_PASSWORD": PASSWORD},
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], START_TIMEOUT_S)
        line = self._process.stdout.readline() if ready else b""
        if line.strip() != b"READY":
            self.stop()
            raise AssertionError(f"SMTP server did not start: {self.stderr()}")

    def stderr(self) -> str:
        return (self.folder / "server.stderr").read_text(errors="replace")

    def mails(self) -> list[tuple[EmailMessage, dict[str, Any]]]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            meta = json.loads(path.with_suffix(".json").read_text())
            found.append((parsed, meta))
        return found

    def auth_log(self) -> list[dict[str, Any]]:
        path = self.folder / "auth.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def wait_exited(self) -> int:
        return self._process.wait(timeout=START_TIMEOUT_S)

    def stop(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=START_TIMEOUT_S)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[SmtpServer]]:
    started: list[SmtpServer] = []
    yield started
    for server in started:
        server.stop()


def start_server(
    servers: list[SmtpServer],
    tmp_path: Path,
    *,
    port: int | None = None,
    certificate: tuple[Path, Path] | None = None,
    **config: Any,
) -> SmtpServer:
    if certificate is not None:
        config = {"cert": str(certificate[0]), "key": str(certificate[1]), **config}
    folder = tmp_path / f"smtp-{len(servers)}"
    server = SmtpServer(port or free_port(), folder, config)
    servers.append(server)
    return server


def smtp_settings(port: int, cert: Path | None, **changes: Any) -> SmtpSettings:
    fields: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "username": USERNAME,
        "password": PASSWORD,
        "sender": SENDER,
        "recipients": RECIPIENTS,
        "timeout_s": CLIENT_TIMEOUT_S,
        "ca_file": str(cert) if cert else None,
    }
    fields.update(changes)
    return SmtpSettings(**fields)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_from_url("sqlite:///" + str(tmp_path / "ledger.db"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def enqueue(engine: Engine, notification_id: str, channel: str) -> None:
    with engine.begin() as connection:
        queue("acct-7", notification_id, "workflow", MESSAGE, [channel], T0)(connection)


def row_of(engine: Engine, notification_id: str) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(notification_table).where(
                notification_table.c.notification_id == notification_id
            )
        ).one()
    return dict(row._mapping)


def causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# --- SMTP ----------------------------------------------------------------------------------


def test_smtp_when_starttls_and_auth_then_one_mail_with_both_parts_over_tls(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    server = start_server(servers, tmp_path, certificate=certificate)
    channel = SmtpChannel(smtp_settings(server.port, certificate[0]))
    enqueue(engine, "workflow:acct-7:c-1", "email")
    enqueue(engine, "workflow:acct-7:c-1", "email")  # the same notification queued twice
    sender = OutboxSender(engine, {"email": channel}, now=Clock())

    assert sender.send_due() == 1
    assert sender.send_due() == 0

    row = row_of(engine, "workflow:acct-7:c-1")
    assert (row["status"], row["attempts"]) == ("sent", 1)
    ((mail, meta),) = server.mails()
    # folded after "Subject:" (78-column lines); Python's parser keeps the fold's space
    assert mail["Subject"].strip() == MESSAGE.subject
    assert mail["From"] == SENDER
    assert mail["To"] == ", ".join(RECIPIENTS)
    assert mail["Message-ID"] == email_message_id("workflow:acct-7:c-1", SENDER)
    assert mail["Message-ID"].endswith("@example.test>")
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == MESSAGE.text
    assert html.get_content().strip() == MESSAGE.html
    assert meta == {
        "mail_from": "alchemiser@example.test",
        "rcpt_tos": ["ops@example.test", "trader@example.test"],
        "tls": True,
        "authenticated": True,
    }
    assert server.auth_log() and all(
        entry == {**entry, "tls": True, "ok": True} for entry in server.auth_log()
    )


def test_smtp_when_server_offers_no_starttls_then_refused_before_credentials_are_sent(
    servers: list[SmtpServer], tmp_path: Path
) -> None:
    server = start_server(servers, tmp_path)  # plain text only, accepts AUTH without TLS
    channel = SmtpChannel(smtp_settings(server.port, None))

    with pytest.raises(DeliveryRefused, match="STARTTLS"):
        channel.send(MESSAGE, message_id="n-plain")

    assert server.auth_log() == []  # the password never crossed the plain connection
    assert server.mails() == []


def test_smtp_when_starttls_switched_off_explicitly_then_plain_auth_is_allowed(
    servers: list[SmtpServer], tmp_path: Path
) -> None:
    server = start_server(servers, tmp_path)
    channel = SmtpChannel(smtp_settings(server.port, None, starttls=False))

    channel.send(MESSAGE, message_id="n-relay")

    assert [entry["tls"] for entry in server.auth_log()] == [False]
    ((_mail, meta),) = server.mails()
    assert meta["tls"] is False


def test_smtp_when_certificate_not_trusted_then_deferred_and_nothing_sent(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    server = start_server(servers, tmp_path, certificate=certificate)
    channel = SmtpChannel(smtp_settings(server.port, None))  # system store only

    with pytest.raises(DeliveryDeferred, match="STARTTLS"):
        channel.send(MESSAGE, message_id="n-untrusted")

    assert server.auth_log() == []
    assert server.mails() == []


def test_smtp_when_password_wrong_then_refused_and_row_failed(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    server = start_server(servers, tmp_path, certificate=certificate)
    settings = smtp_settings(server.port, certificate[0], password="not-the-password")
    enqueue(engine, "n-wrong", "email")
    sender = OutboxSender(engine, {"email": SmtpChannel(settings)}, now=Clock())

    with pytest.raises(DeliveryRefused, match="535"):
        SmtpChannel(settings).send(MESSAGE, message_id="n-direct")
    assert sender.send_due() == 1

    row = row_of(engine, "n-wrong")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "AUTH: 535" in row["last_error"]
    assert server.mails() == []
    attempts = server.auth_log()
    assert attempts and not any(entry["ok"] for entry in attempts)
    assert all(entry["tls"] for entry in attempts)


def test_smtp_when_server_down_then_pending_and_delivered_once_it_is_up(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    port = free_port()  # nothing listens here yet
    clock = Clock()
    channel = SmtpChannel(smtp_settings(port, certificate[0]))
    enqueue(engine, "n-down", "email")
    sender = OutboxSender(engine, {"email": channel}, now=clock, backoff_initial_s=5)

    assert sender.send_due() == 1
    row = row_of(engine, "n-down")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert as_utc(row["next_attempt_at"]) == T0 + timedelta(seconds=5)
    assert "ConnectionRefusedError" in row["last_error"]

    server = start_server(servers, tmp_path, port=port, certificate=certificate)
    clock.at = T0 + timedelta(seconds=4)
    assert sender.send_due() == 0  # not due yet
    clock.at = T0 + timedelta(seconds=6)
    assert sender.send_due() == 1
    assert sender.send_due() == 0

    row = row_of(engine, "n-down")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert as_utc(row["sent_at"]) == T0 + timedelta(seconds=6)
    assert len(server.mails()) == 1


def test_smtp_when_server_answers_4xx_after_data_then_deferred(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    server = start_server(
        servers, tmp_path, certificate=certificate, data_reply="451 4.3.0 try again later"
    )
    enqueue(engine, "n-451", "email")
    channel = SmtpChannel(smtp_settings(server.port, certificate[0]))
    OutboxSender(engine, {"email": channel}, now=Clock()).send_due()

    row = row_of(engine, "n-451")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "DATA: 451" in row["last_error"]


def test_smtp_when_server_dies_after_data_then_uncertain_and_never_resent(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    server = start_server(servers, tmp_path, certificate=certificate, crash_after_data=True)
    clock = Clock()
    enqueue(engine, "n-crash", "email")
    channel = SmtpChannel(smtp_settings(server.port, certificate[0]))
    sender = OutboxSender(engine, {"email": channel}, now=clock)

    assert sender.send_due() == 1
    assert server.wait_exited() == 3
    clock.at = T0 + timedelta(days=1)
    assert sender.send_due() == 0

    row = row_of(engine, "n-crash")
    assert (row["status"], row["attempts"]) == ("uncertain", 1)
    assert len(server.mails()) == 1  # it was delivered: resending would have doubled it


def test_recover_when_row_left_sending_then_uncertain_and_no_mail(
    servers: list[SmtpServer], tmp_path: Path, certificate: tuple[Path, Path], engine: Engine
) -> None:
    server = start_server(servers, tmp_path, certificate=certificate)
    enqueue(engine, "n-stuck", "email")
    with engine.begin() as connection:
        connection.execute(sa.update(notification_table).values(status="sending", attempts=1))
    channel = SmtpChannel(smtp_settings(server.port, certificate[0]))
    sender = OutboxSender(engine, {"email": channel}, now=Clock())

    assert sender.recover() == 1
    assert sender.send_due() == 0

    assert row_of(engine, "n-stuck")["status"] == "uncertain"
    assert server.mails() == []


# --- webhook -------------------------------------------------------------------------------


class WebhookReceiver:
    """An HTTP server on a thread: records each POST, answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                answer = b"ok" if receiver.status < 300 else b"invalid_payload"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the default prints the path, which holds the token

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}/services/T000/B000/{TOKEN}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver()
    yield started
    started.stop()


def webhook(url: str) -> WebhookChannel:
    return WebhookChannel(WebhookSettings(url=SecretStr(url), timeout_s=CLIENT_TIMEOUT_S))


@pytest.mark.parametrize(
    ("status", "row_status"),
    [(200, "sent"), (500, "pending"), (503, "pending"), (429, "pending"), (400, "failed")],
)
def test_webhook_when_answered_then_row_follows_status(
    receiver: WebhookReceiver, engine: Engine, status: int, row_status: str
) -> None:
    receiver.status = status
    enqueue(engine, "n-hook", "webhook")
    OutboxSender(engine, {"webhook": webhook(receiver.url)}, now=Clock()).send_due()

    row = row_of(engine, "n-hook")
    assert (row["status"], row["attempts"]) == (row_status, 1)
    ((path, headers, body),) = receiver.requests
    assert path == f"/services/T000/B000/{TOKEN}"
    assert headers["Idempotency-Key"] == "n-hook"
    assert body["text"] == MESSAGE.subject.replace("&", "&amp;")
    assert body["blocks"][0]["text"]["text"].startswith("```\nWorkflow completed")
    if status != 200:
        assert f"HTTP {status}" in row["last_error"]


def test_webhook_when_nothing_listens_then_deferred(engine: Engine) -> None:
    channel = webhook(f"http://{HOST}:{free_port()}/services/T000/B000/{TOKEN}")

    with pytest.raises(DeliveryDeferred, match="webhook unreachable"):
        channel.send(MESSAGE, message_id="n-down")


# --- secrets -------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Production logging (JSON through the root logger) at DEBUG, restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    touched = ["httpx", "httpcore", "urllib3", "uvicorn", "uvicorn.error", "uvicorn.access"]
    touched += ["alembic", "confluent_kafka"]
    saved_levels = {name: logging.getLogger(name).level for name in touched}
    stream = io.StringIO()
    configure_logging("DEBUG", "json", "ledger", stream=stream)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # as an operator debugging might
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def test_secrets_when_sends_fail_and_succeed_then_never_in_logs_errors_or_reprs(
    servers: list[SmtpServer],
    tmp_path: Path,
    certificate: tuple[Path, Path],
    engine: Engine,
    receiver: WebhookReceiver,
    log_stream: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_server(servers, tmp_path, certificate=certificate)
    good = smtp_settings(server.port, certificate[0])
    bad = smtp_settings(server.port, certificate[0], password=PASSWORD + "-wrong")
    hook = webhook(receiver.url)
    errors: list[BaseException] = []
    for channel in (SmtpChannel(bad), SmtpChannel(smtp_settings(free_port(), None))):
        with pytest.raises((DeliveryRefused, DeliveryDeferred)) as caught:
            channel.send(MESSAGE, message_id="n-secret")
        errors += causes(caught.value)
    receiver.status = 400
    with pytest.raises(DeliveryRefused) as refused:
        hook.send(MESSAGE, message_id="n-secret")
    errors += causes(refused.value)
    with pytest.raises(DeliveryDeferred) as unreachable:
        webhook(receiver.url.replace(receiver.url.split("/")[2], f"{HOST}:{free_port()}")).send(
            MESSAGE, message_id="n-secret"
        )
    errors += causes(unreachable.value)
    with pytest.raises(ValidationError) as invalid:
        WebhookSettings(url=SecretStr(f"ftp://{HOST}/{TOKEN}"))
    errors.append(invalid.value)
    receiver.status = 200
    for name in ("email", "bad-email", "webhook"):
        enqueue(engine, f"n-{name}", name)
    channels: dict[str, Channel] = {
        "email": SmtpChannel(good),
        "bad-email": SmtpChannel(bad),
        "webhook": hook,
    }
    assert OutboxSender(engine, channels, now=Clock()).send_due() == 3

    assert row_of(engine, "n-email")["status"] == "sent"
    assert row_of(engine, "n-webhook")["status"] == "sent"
    assert row_of(engine, "n-bad-email")["status"] == "failed"
    logged = log_stream.getvalue()
    assert "HTTP Request: POST" in logged  # httpx did log the request...
    assert "<redacted webhook url>" in logged  # ...with its URL redacted
    assert "notification sent" in logged
    captured = capfd.readouterr()
    with engine.connect() as connection:
        stored = connection.execute(sa.select(notification_table.c.last_error)).scalars().all()
    texts = [
        logged,
        caplog.text,
        captured.out,
        captured.err,
        repr(good),
        str(good),
        repr(hook),
        repr(WebhookSettings(url=SecretStr(receiver.url))),
        *(str(error) for error in errors),
        *(repr(error) for error in errors),
        *(text or "" for text in stored),
    ]
    for text in texts:
        assert PASSWORD not in text
        assert TOKEN not in text
