"""OpenTelemetry tracing across Kafka: W3C trace context in record headers.

The producing process wraps each produce in :func:`produce_span` and adds the context to the
record's headers with :func:`inject_headers`; the consuming process wraps the handling of a
record in :func:`consume_span`, whose parent is the context extracted from the headers. So
``SignalGenerated -> RebalancePlanned -> OrderSettled`` is one trace across three processes::

    with consume_span(record.topic(), event_type, record.headers()):
        ...  # handle; for each output:
        with produce_span(out_topic, out_type):
            producer.produce(out_topic, value, headers=inject_headers(headers))

``opentelemetry-instrumentation-confluent-kafka`` is deliberately not used: its consumer span
starts in ``poll()`` and ends at the next ``poll()`` (not when the record's transaction
commits), it *links* to the producer instead of continuing its trace, and it appends a second
``traceparent`` instead of replacing one. The runtime owns the consume loop, so it opens the
span exactly around one record.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators import textmap
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from alchemiser_common.observability.exceptions import ObservabilityConfigurationError

__all__ = [
    "TRACER_NAME",
    "TRACE_HEADERS",
    "HeaderValue",
    "KafkaHeaders",
    "configure_tracing",
    "consume_span",
    "extract_context",
    "inject_headers",
    "produce_span",
]

TRACER_NAME = "alchemiser.kafka"
TRACE_HEADERS = ("traceparent", "tracestate")

HeaderValue = bytes | str | None
KafkaHeaders = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()


class _HeaderGetter(textmap.Getter[Sequence[tuple[str, HeaderValue]]]):
    """Reads W3C fields from a Kafka header list (values are bytes; the last one wins)."""

    def get(self, carrier: Sequence[tuple[str, HeaderValue]], key: str) -> list[str] | None:
        values = [
            value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
            for name, value in carrier
            if name.lower() == key and value is not None
        ]
        # A record forwarded by a client that appends rather than replaces carries several;
        # the propagator reads the first, and the last appended is the nearest hop.
        return list(reversed(values)) or None

    def keys(self, carrier: Sequence[tuple[str, HeaderValue]]) -> list[str]:
        return [name for name, _ in carrier]


class _HeaderSetter(textmap.Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


_GETTER = _HeaderGetter()
_SETTER = _HeaderSetter()


def configure_tracing(
    service_name: str,
    exporter: str = "none",
    endpoint: str | None = None,
    *,
    instance_id: str | None = None,
    set_global: bool = True,
) -> TracerProvider:
    """Create the process's ``TracerProvider`` and (by default) install it globally.

    ``exporter``: ``"otlp"`` (OTLP over HTTP to ``endpoint``, or to the standard
    ``OTEL_EXPORTER_OTLP_*`` variables when ``endpoint`` is None), ``"console"`` (one JSON span
    a line on standard error, keeping standard output for logs) or ``"none"`` (spans are still
    created and sampled, so trace context propagates to the next process; nothing is exported).
    OpenTelemetry accepts a global provider once per process; later calls with ``set_global``
    are ignored by the API with a warning, so tests pass ``set_global=False`` and hand the
    returned provider to the span functions. The provider flushes at interpreter exit.
    """
    attributes: dict[str, str] = {SERVICE_NAME: service_name}
    if instance_id is not None:
        attributes[SERVICE_INSTANCE_ID] = instance_id
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter == "otlp":
        # Imported here: it pulls in requests and protobuf, which "none" does not need.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    elif exporter == "console":
        console = ConsoleSpanExporter(out=sys.stderr, formatter=_one_line)
        provider.add_span_processor(BatchSpanProcessor(console))
    elif exporter != "none":
        raise ObservabilityConfigurationError(
            f"unknown OpenTelemetry exporter {exporter!r}; use otlp, console or none"
        )
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + os.linesep


def inject_headers(
    headers: Sequence[tuple[str, bytes]] | None = None, context: Context | None = None
) -> KafkaHeaders:
    """Return a copy of ``headers`` carrying ``traceparent``/``tracestate`` of the current span.

    Existing trace headers are replaced. Without a valid current span (tracing never
    configured) the headers are returned unchanged, so a forwarded record keeps its context.
    """
    result = list(headers or [])
    fields: dict[str, str] = {}
    _PROPAGATOR.inject(fields, context=context, setter=_SETTER)
    if not fields:
        return result
    result = [(name, value) for name, value in result if name.lower() not in TRACE_HEADERS]
    result.extend((name, value.encode("utf-8")) for name, value in fields.items())
    return result


def extract_context(headers: Sequence[tuple[str, HeaderValue]] | None) -> Context:
    """The trace context carried by Kafka ``headers``; an empty context when there is none.

    Malformed ``traceparent`` values are ignored (the consumer span then starts a new trace).
    """
    return _PROPAGATOR.extract(list(headers or []), context=Context(), getter=_GETTER)


_TRACERS: weakref.WeakKeyDictionary[trace.TracerProvider, trace.Tracer] = (
    weakref.WeakKeyDictionary()
)
_GLOBAL_TRACER = trace.get_tracer(TRACER_NAME)
"""A proxy until a global provider is installed, then that provider's tracer."""


def _tracer(tracer_provider: trace.TracerProvider | None) -> trace.Tracer:
    """The tracer of ``tracer_provider`` (or the global one), made once per provider: an SDK
    provider builds a new tracer, with a deprecation check, on every ``get_tracer``."""
    if tracer_provider is None:
        return _GLOBAL_TRACER
    tracer = _TRACERS.get(tracer_provider)
    if tracer is None:
        tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        _TRACERS[tracer_provider] = tracer
    return tracer


def _messaging_attributes(
    topic: str,
    event_type: str,
    operation: str,
    extra: Mapping[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
        "alchemiser.event_type": event_type,
    }
    attributes.update(extra or {})
    return attributes


@contextmanager
def consume_span(
    topic: str,
    event_type: str,
    headers: Sequence[tuple[str, HeaderValue]] | None,
    *,
    partition: int | None = None,
    offset: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """A current CONSUMER span ``"<topic> process"`` continuing the trace in ``headers``.

    Its parent is the producer's span from the other process; spans and injected headers made
    inside the block belong to the same trace. An exception escaping the block is recorded on
    the span, which is then marked as an error.
    """
    extra: dict[str, AttributeValue] = dict(attributes or {})
    if partition is not None:
        extra["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        extra["messaging.kafka.offset"] = offset
    with _tracer(tracer_provider).start_as_current_span(
        f"{topic} process",
        context=extract_context(headers),
        kind=SpanKind.CONSUMER,
        attributes=_messaging_attributes(topic, event_type, "process", extra),
    ) as span:
        yield span


@contextmanager
def produce_span(
    topic: str,
    event_type: str,
    *,
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """A current PRODUCER span ``"<topic> send"``, child of the current span if any.

    Call :func:`inject_headers` inside the block so the record carries this span's context.
    """
    with _tracer(tracer_provider).start_as_current_span(
        f"{topic} send",
        kind=SpanKind.PRODUCER,
        attributes=_messaging_attributes(topic, event_type, "send", attributes),
    ) as span:
        yield span
