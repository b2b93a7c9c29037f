from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from alchemiser_common.observability import (
    MASK,
    ObservabilityConfigurationError,
    bind_event_context,
    configure_logging,
    get_logger,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    touched = ["uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "confluent_kafka"]
    touched += ["httpx", "httpcore", "urllib3"]
    saved_levels = {name: logging.getLogger(name).level for name in touched}
    stream = io.StringIO()
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_when_event_context_bound_then_line_carries_fields_and_none_after_exit(
    log_stream: io.StringIO,
) -> None:
    configure_logging("INFO", "json", "strategy", stream=log_stream)
    log = get_logger("alchemiser.test")
    event_id, correlation_id = uuid4(), uuid4()

    with bind_event_context(
        event_id=event_id,
        event_type="SignalGenerated",
        correlation_id=correlation_id,
        causation_id="cause-1",
        account_id="acct-7",
    ):
        log.info("handling record", partition=2)
    log.info("idle")

    inside, after = _lines(log_stream)
    assert inside["message"] == "handling record"
    assert inside["level"] == "info"
    assert inside["logger"] == "alchemiser.test"
    assert inside["service"] == "strategy"
    assert inside["partition"] == 2
    assert inside["event_id"] == str(event_id)
    assert inside["event_type"] == "SignalGenerated"
    assert inside["correlation_id"] == str(correlation_id)
    assert inside["causation_id"] == "cause-1"
    assert inside["account_id"] == "acct-7"
    stamp = datetime.fromisoformat(str(inside["timestamp"]))
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    for key in ("event_id", "event_type", "correlation_id", "causation_id", "account_id"):
        assert key not in after


def test_log_when_stdlib_logger_used_then_same_json_with_bound_context(
    log_stream: io.StringIO,
) -> None:
    configure_logging("INFO", "json", "portfolio", stream=log_stream)

    with bind_event_context(event_id="e-1", event_type="RebalancePlanned"):
        logging.getLogger("uvicorn.error").warning("server %s ready", "api")

    (line,) = _lines(log_stream)
    assert line["message"] == "server api ready"
    assert line["level"] == "warning"
    assert line["logger"] == "uvicorn.error"
    assert line["service"] == "portfolio"
    assert line["event_id"] == "e-1"
    assert line["event_type"] == "RebalancePlanned"


def test_bind_when_block_raises_then_context_cleared_and_outer_values_restored(
    log_stream: io.StringIO,
) -> None:
    configure_logging("INFO", "json", "execution", stream=log_stream)
    log = get_logger("t")

    with bind_event_context(correlation_id="outer"):
        with (
            pytest.raises(RuntimeError),
            bind_event_context(correlation_id="inner", event_id="e-2"),
        ):
            log.info("inner")
            raise RuntimeError("boom")
        log.info("outer again")
    log.info("outside")

    inner, outer, outside = _lines(log_stream)
    assert (inner["correlation_id"], inner["event_id"]) == ("inner", "e-2")
    assert outer["correlation_id"] == "outer"
    assert "event_id" not in outer
    assert "correlation_id" not in outside


def test_log_when_secrets_logged_then_values_masked(log_stream: io.StringIO) -> None:
    configure_logging("DEBUG", "json", "execution", stream=log_stream)
    log = get_logger("t")

    log.info(
        "effective config",
        password="hunter2",
        alpaca_api_key="AKXYZ",
        secret_value=SecretStr("s3cr3t-str"),
        database={"url": SecretStr("postgresql://u:dbpw@h/db"), "sasl_password": "pw-nested"},
        headers=[{"Authorization": "Bearer tok-abc"}],
        note="plain",
    )
    logging.getLogger("confluent_kafka").info("client", extra={"access_token": "tok-std"})

    output = log_stream.getvalue()
    for secret in ("hunter2", "AKXYZ", "s3cr3t-str", "dbpw", "pw-nested", "tok-abc", "tok-std"):
        assert secret not in output
    structured, stdlib = _lines(log_stream)
    assert structured["password"] == MASK
    assert structured["secret_value"] == MASK
    assert structured["database"] == {"url": MASK, "sasl_password": MASK}
    assert structured["note"] == "plain"
    assert stdlib["access_token"] == MASK


def test_log_when_below_configured_level_then_not_written(log_stream: io.StringIO) -> None:
    configure_logging("warning", "json", "strategy", stream=log_stream)

    get_logger("t").info("hidden")
    logging.getLogger("alembic").info("hidden too")
    get_logger("t").error("shown")

    assert [line["message"] for line in _lines(log_stream)] == ["shown"]


def test_log_when_exception_logged_then_one_line_with_traceback(log_stream: io.StringIO) -> None:
    configure_logging("INFO", "json", "strategy", stream=log_stream)

    try:
        raise ValueError("bad input")
    except ValueError:
        get_logger("t").exception("handler failed; the record will be reprocessed")

    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: bad input" in str(json.loads(lines[0])["exception"])


def test_log_when_span_current_then_trace_and_span_ids_added(log_stream: io.StringIO) -> None:
    configure_logging("INFO", "json", "strategy", stream=log_stream)
    tracer = TracerProvider().get_tracer("t")

    with tracer.start_as_current_span("work") as span:
        get_logger("t").info("inside span")

    (line,) = _lines(log_stream)
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_log_when_console_format_then_human_readable_text(log_stream: io.StringIO) -> None:
    configure_logging("INFO", "console", "strategy", stream=log_stream)

    get_logger("t").info("hello console", password="pw-console")

    output = log_stream.getvalue()
    assert "hello console" in output
    assert "pw-console" not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.splitlines()[0])


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_configure_when_unknown_level_or_format_then_configuration_error(
    log_stream: io.StringIO, level: str, fmt: str
) -> None:
    with pytest.raises(ObservabilityConfigurationError):
        configure_logging(level, fmt, "strategy", stream=log_stream)
