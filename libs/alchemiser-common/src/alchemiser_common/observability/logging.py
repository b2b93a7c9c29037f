"""Structured logging: structlog for our code, stdlib logging routed through the same renderer.

Only a ``__main__`` module calls :func:`configure_logging`; libraries call :func:`get_logger`
and never touch handlers. In JSON format every event is one line with at least ``timestamp``
(ISO 8601, UTC), ``level``, ``logger``, ``service`` and ``message``; while a record is being
processed the runtime wraps the handler in :func:`bind_event_context`, so every line logged
meanwhile (also by stdlib loggers) carries ``event_id``, ``event_type``, ``correlation_id``,
``causation_id`` and ``account_id``. When a span is current, ``trace_id`` and ``span_id`` are
added so a log line leads to its trace.

Uvicorn must be started with ``log_config=None`` (otherwise it installs its own handlers);
confluent-kafka logs through Python only when given ``"logger": logging.getLogger(...)`` in its
config; Alembic's ``env.py`` must not call ``fileConfig`` when run from a service.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO
from uuid import UUID

import structlog
from opentelemetry import trace
from structlog.typing import Processor

from alchemiser_common.observability.exceptions import ObservabilityConfigurationError
from alchemiser_common.observability.masking import mask_secrets_processor

__all__ = [
    "EVENT_CONTEXT_KEYS",
    "bind_event_context",
    "configure_logging",
    "get_logger",
]

EVENT_CONTEXT_KEYS = ("event_id", "event_type", "correlation_id", "causation_id", "account_id")

# Loggers of libraries that install their own handlers or are needlessly chatty at INFO.
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "confluent_kafka")
_QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "urllib3": logging.INFO}
_HANDLER_NAME = "alchemiser-observability"


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    mapping = logging.getLevelNamesMapping()
    try:
        return mapping[level.strip().upper()]
    except KeyError:
        raise ObservabilityConfigurationError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ) from None


def _add_service(service: str) -> Processor:
    def add_service(
        _logger: Any, _method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _add_trace_ids(
    _logger: Any, _method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(span_context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(span_context.span_id))
    return event_dict


def _renderer(fmt: str, stream: TextIO) -> list[Processor]:
    if fmt == "json":
        return [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ]
    if fmt == "console":
        colors = bool(getattr(stream, "isatty", lambda: False)())
        return [structlog.dev.ConsoleRenderer(colors=colors)]
    raise ObservabilityConfigurationError(f"unknown log format {fmt!r}; use json or console")


def configure_logging(
    level: int | str = "INFO",
    fmt: str = "json",
    service: str = "alchemiser",
    *,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the stdlib root logger to write one rendering to ``stream``.

    ``fmt`` is ``"json"`` (one JSON object a line, for production) or ``"console"``. ``stream``
    defaults to standard output. Calling again replaces the previous configuration (tests do).
    Raises :class:`ObservabilityConfigurationError` for an unknown level or format.
    """
    level_number = _level_number(level)
    out = stream if stream is not None else sys.stdout
    renderer = _renderer(fmt, out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service(service),
        _add_trace_ids,
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so a later configure_logging (tests, a changed service name) applies to
        # loggers already handed out at import time.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_secrets_processor,
            *renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number)
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
        routed.setLevel(logging.NOTSET)
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, level_number))
    logging.captureWarnings(True)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use ``__name__``); keyword arguments become fields."""
    return structlog.stdlib.get_logger(name)


def _text(value: object) -> object:
    return str(value) if isinstance(value, UUID) else value


@contextmanager
def bind_event_context(
    *,
    event_id: str | UUID | None = None,
    event_type: str | None = None,
    correlation_id: str | UUID | None = None,
    causation_id: str | UUID | None = None,
    account_id: str | None = None,
    **extra: object,
) -> Iterator[None]:
    """Add the record's identifiers to every log line emitted inside the ``with`` block.

    ``None`` values are left out. On exit the keys are removed again (or restored to the values
    an enclosing block bound), also when the block raises. Context variables are per thread and
    per asyncio task, so concurrent records do not mix.
    """
    fields: dict[str, object] = {
        "event_id": event_id,
        "event_type": event_type,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "account_id": account_id,
        **extra,
    }
    bound = {key: _text(value) for key, value in fields.items() if value is not None}
    # set-and-reset by token rather than structlog's bound_contextvars, which copies the
    # whole context to find what to restore (it runs once per record)
    tokens = structlog.contextvars.bind_contextvars(**bound)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
