from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from alchemiser_common.observability import (
    ObservabilityConfigurationError,
    configure_tracing,
    consume_span,
    extract_context,
    inject_headers,
    produce_span,
)


def _process() -> tuple[TracerProvider, InMemorySpanExporter]:
    """One 'process': its own provider and an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _traceparent(headers: list[tuple[str, bytes]]) -> str:
    (value,) = [v for k, v in headers if k == "traceparent"]
    return value.decode()


def test_consume_when_headers_from_other_process_then_same_trace_and_parent_is_producer() -> None:
    provider_a, spans_a = _process()
    provider_b, spans_b = _process()

    with produce_span("strategy.signals", "SignalGenerated", tracer_provider=provider_a):
        headers = inject_headers([("event_type", b"SignalGenerated")])
    with consume_span(
        "strategy.signals",
        "SignalGenerated",
        headers,
        partition=1,
        offset=42,
        tracer_provider=provider_b,
    ):
        pass

    (producer,) = spans_a.get_finished_spans()
    (consumer,) = spans_b.get_finished_spans()
    assert producer.kind is SpanKind.PRODUCER
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.parent.is_remote
    assert consumer.name == "strategy.signals process"
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.destination.partition.id"] == "1"
    assert attributes["messaging.kafka.offset"] == 42
    assert attributes["alchemiser.event_type"] == "SignalGenerated"


def test_workflow_when_three_processes_chain_then_one_trace() -> None:
    provider_a, spans_a = _process()
    provider_b, spans_b = _process()
    provider_c, spans_c = _process()

    with produce_span("signals", "SignalGenerated", tracer_provider=provider_a):
        to_b = inject_headers([])
    with (
        consume_span("signals", "SignalGenerated", to_b, tracer_provider=provider_b),
        produce_span("plans", "RebalancePlanned", tracer_provider=provider_b),
    ):
        to_c = inject_headers([])
    with consume_span("plans", "RebalancePlanned", to_c, tracer_provider=provider_c):
        pass

    all_spans = [*spans_a.get_finished_spans(), *spans_b.get_finished_spans()]
    all_spans += spans_c.get_finished_spans()
    assert len(all_spans) == 4
    assert len({span.context.trace_id for span in all_spans}) == 1
    b_consume = next(s for s in spans_b.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    b_produce = next(s for s in spans_b.get_finished_spans() if s.kind is SpanKind.PRODUCER)
    assert b_produce.parent is not None
    assert b_produce.parent.span_id == b_consume.context.span_id


def test_inject_when_trace_headers_present_then_replaced_and_input_unchanged() -> None:
    provider, _ = _process()
    stale = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    original = [("traceparent", stale.encode()), ("event_id", b"e-1")]

    with produce_span("t", "E", tracer_provider=provider) as span:
        headers = inject_headers(original)

    context = span.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert _traceparent(headers) == expected
    assert context.trace_flags.sampled
    assert ("event_id", b"e-1") in headers
    assert original[0] == ("traceparent", stale.encode())


def test_inject_when_no_current_span_then_headers_unchanged() -> None:
    original = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]

    assert inject_headers(original) == original
    assert inject_headers(None) == []


@pytest.mark.parametrize(
    "headers",
    [None, [], [("traceparent", b"garbage")], [("traceparent", None)]],
)
def test_consume_when_no_valid_context_then_new_root_trace(
    headers: list[tuple[str, bytes | None]] | None,
) -> None:
    provider, spans = _process()

    with consume_span("t", "E", headers, tracer_provider=provider):
        pass

    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert span.context.is_valid


def test_extract_when_str_values_and_tracestate_then_context_carries_both() -> None:
    trace_id, span_id = "a" * 32, "b" * 16
    headers: list[tuple[str, bytes | str | None]] = [
        ("traceparent", f"00-{trace_id}-{span_id}-01"),
        ("tracestate", b"vendor=x"),
    ]
    provider, spans = _process()

    with consume_span("t", "E", headers, tracer_provider=provider):
        pass

    extracted = extract_context(headers)
    assert extracted  # a non-empty context
    (span,) = spans.get_finished_spans()
    assert span.parent is not None
    assert f"{span.parent.trace_id:032x}" == trace_id
    assert span.parent.trace_state.get("vendor") == "x"


def test_consume_when_block_raises_then_span_records_error() -> None:
    provider, spans = _process()

    with (
        pytest.raises(ValueError, match="bad"),
        consume_span("t", "E", None, tracer_provider=provider),
    ):
        raise ValueError("bad")

    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_configure_when_exporter_none_then_spans_still_propagate() -> None:
    provider = configure_tracing("strategy", "none", set_global=False)
    downstream_provider, downstream = _process()

    with produce_span("t", "E", tracer_provider=provider) as span:
        assert span.is_recording()
        headers = inject_headers([])
    with consume_span("t", "E", headers, tracer_provider=downstream_provider):
        pass

    (consumer,) = downstream.get_finished_spans()
    assert consumer.context.trace_id == span.get_span_context().trace_id
    assert provider.resource.attributes["service.name"] == "strategy"
    provider.shutdown()


def test_configure_when_console_exporter_then_one_json_line_per_span_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = configure_tracing("portfolio", "console", instance_id="p-0", set_global=False)

    with produce_span("t", "E", tracer_provider=provider):
        pass
    provider.force_flush()
    provider.shutdown()

    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    exported = json.loads(line)
    assert exported["name"] == "t send"
    assert exported["resource"]["attributes"]["service.instance.id"] == "p-0"
    assert captured.out == ""


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, int]]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.rfile.read(length)
        self.received.append((self.path, self.headers["Content-Type"], length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    received: list[tuple[str, str, int]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_configure_when_otlp_exporter_then_spans_posted_to_endpoint(
    collector: tuple[str, list[tuple[str, str, int]]],
) -> None:
    endpoint, received = collector
    provider = configure_tracing("execution", "otlp", endpoint, set_global=False)

    with produce_span("t", "E", tracer_provider=provider):
        pass
    assert provider.force_flush(5000)
    provider.shutdown()

    assert len(received) == 1
    path, content_type, length = received[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    assert length > 0


def test_configure_when_unknown_exporter_then_configuration_error() -> None:
    with pytest.raises(ObservabilityConfigurationError):
        configure_tracing("strategy", "jaeger", set_global=False)
