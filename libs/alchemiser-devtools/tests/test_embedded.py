"""The embedded tansu broker: start, answer, stop, and fail loudly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from alchemiser_common.kafka import BrokerStartError, KafkaProducer
from alchemiser_common.settings import KafkaSettings
from alchemiser_devtools.embedded import EmbeddedBroker, free_port


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _fake_binary(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-tansu"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.integration
def test_embedded_broker_when_stopped_then_process_gone_and_port_free() -> None:
    broker = EmbeddedBroker()
    with broker:
        pid, port, log_path = broker.pid, broker.port, broker.log_path
        assert pid is not None and port is not None and log_path is not None
        assert broker.is_running
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=5
        )
        assert len(metadata.brokers) == 1
        assert "listening on" in log_path.read_text()

    assert not broker.is_running
    assert _process_gone(pid)
    assert _port_free(port)
    assert not log_path.exists()  # the temporary log directory is removed
    with pytest.raises(BrokerStartError, match="not started"):
        _ = broker.bootstrap_servers
    broker.stop()  # idempotent


@pytest.mark.integration
def test_embedded_broker_when_clients_still_connected_then_stop_is_prompt() -> None:
    broker = EmbeddedBroker().start()
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=broker.bootstrap_servers))
    producer.produce("connected.topic", b"v")
    assert producer.flush(10) == 0

    started = time.monotonic()
    broker.stop()

    assert time.monotonic() - started < 2.0  # SIGTERM would wait ~5 s for the producer
    producer.close(0)


@pytest.mark.integration
def test_embedded_broker_when_port_taken_by_another_broker_then_start_error() -> None:
    with EmbeddedBroker() as first:
        second = EmbeddedBroker(port=first.port, ready_timeout=10)
        with pytest.raises(BrokerStartError):
            second.start()
        assert not second.is_running
        assert first.is_running


def test_embedded_broker_when_binary_exits_at_once_then_error_has_exit_code_and_log_tail(
    tmp_path: Path,
) -> None:
    binary = _fake_binary(tmp_path, 'echo "fatal: storage engine unavailable" >&2\nexit 3')
    broker = EmbeddedBroker(port=free_port(), binary=binary)

    with pytest.raises(BrokerStartError) as caught:
        broker.start()

    message = str(caught.value)
    assert "code 3" in message
    assert "fatal: storage engine unavailable" in message
    assert not broker.is_running


def test_embedded_broker_when_never_ready_then_bounded_error_and_process_killed(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    binary = _fake_binary(tmp_path, f'echo $$ > {pid_file}\necho "still booting"\nexec sleep 60')
    broker = EmbeddedBroker(port=free_port(), binary=binary, ready_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(BrokerStartError, match="did not answer a metadata request") as caught:
        broker.start()

    assert time.monotonic() - started < 5
    assert "still booting" in str(caught.value)
    assert _process_gone(int(pid_file.read_text()))


@pytest.mark.integration
def test_module_main_when_run_then_serves_until_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "alchemiser_devtools.embedded", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"broker ready on 127.0.0.1:{port}" in line
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=5)
        assert len(metadata.brokers) == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert _port_free(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
