"""The S3 emulator (moto_server) launcher, and the embedded broker's S3 storage and restarts."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from alchemiser_common.kafka import BrokerStartError
from alchemiser_devtools import s3emulator
from alchemiser_devtools.broker import skip_or_fail
from alchemiser_devtools.embedded import EmbeddedBroker, free_port
from alchemiser_devtools.s3emulator import S3Emulator, S3EmulatorError, S3Storage


def _process_gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie waiting for a parent that is not us counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` ends within ``seconds``: a SIGKILL sent to a process we do not wait for
    (a grandchild) is delivered asynchronously, so it may still be seen alive for a moment."""
    deadline = time.monotonic() + seconds
    while not _process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _script(tmp_path: Path, name: str, body: str) -> str:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def _http(port: int, method: str, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- S3Storage ---------------------------------------------------------------------------
def test_s3_storage_when_http_endpoint_then_url_and_env_for_tansu() -> None:
    storage = S3Storage(endpoint_url="http://127.0.0.1:9000", bucket="b1")

    assert storage.url == "s3://b1/"
    assert storage.env() == {
        "AWS_ENDPOINT": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    assert "AWS_ALLOW_HTTP" not in S3Storage("https://s3.example", "b1").env()


# -- S3Emulator failures (no moto needed) ------------------------------------------------
def test_s3_emulator_when_command_exits_at_once_then_error_has_exit_code_and_log_tail(
    tmp_path: Path,
) -> None:
    command = _script(tmp_path, "fake-moto", 'echo "boom: no flask" >&2\nexit 4')
    emulator = S3Emulator(command=[command], port=free_port())

    with pytest.raises(S3EmulatorError) as caught:
        emulator.start()

    assert "code 4" in str(caught.value)
    assert "boom: no flask" in str(caught.value)
    assert not emulator.is_running


def test_s3_emulator_when_never_ready_then_bounded_error_and_process_group_killed(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    child_file = tmp_path / "child"
    command = _script(
        tmp_path,
        "fake-moto",
        f'sleep 60 &\necho $! > {child_file}\necho $$ > {pid_file}\necho "importing"\nwait',
    )
    emulator = S3Emulator(command=[command], ready_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(S3EmulatorError, match="did not answer") as caught:
        emulator.start()

    assert time.monotonic() - started < 5
    assert "importing" in str(caught.value)
    assert _process_gone(int(pid_file.read_text()))
    # the whole process group: its `sleep 60` was killed too (unkilled, it would live 60 s)
    assert _gone_within(int(child_file.read_text()), seconds=5)


def test_s3_emulator_when_moto_missing_then_error_names_the_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3emulator, "moto_available", lambda: False)

    with pytest.raises(S3EmulatorError, match=r"moto\[server\]"):
        S3Emulator().start()


def test_s3_emulator_when_not_started_then_endpoint_raises_and_stop_is_a_no_op() -> None:
    emulator = S3Emulator()

    with pytest.raises(S3EmulatorError, match="not started"):
        _ = emulator.endpoint_url
    with pytest.raises(ValueError, match="bucket name"):
        emulator.create_bucket("Not_A_Bucket")
    emulator.stop()


def test_skip_or_fail_when_ci_then_fail_else_skip() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        skip_or_fail("no moto", {"CI": "true"})
    with pytest.raises(pytest.skip.Exception, match="no moto"):
        skip_or_fail("no moto", {})


# -- EmbeddedBroker with S3 storage (fake tansu) ------------------------------------------
def test_embedded_broker_when_storage_and_storage_engine_both_given_then_value_error() -> None:
    storage = S3Storage("http://127.0.0.1:1", "b1")

    with pytest.raises(ValueError, match="either"):
        EmbeddedBroker(storage=storage, storage_engine="memory://other/")


def test_embedded_broker_when_s3_storage_then_tansu_gets_url_and_only_our_aws_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someones-real-account")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "secret")
    seen = tmp_path / "seen"
    binary = _script(tmp_path, "fake-tansu", f'echo "$@" > {seen}\nenv >> {seen}\nexit 3')
    storage = S3Storage("http://127.0.0.1:9", "b1")
    broker = EmbeddedBroker(
        port=free_port(), storage=storage, binary=binary, cluster_id="c1", env={"X_EXTRA": "1"}
    )

    with pytest.raises(BrokerStartError, match="code 3"):
        broker.start()

    text = seen.read_text()
    assert "--storage-engine s3://b1/" in text
    assert "--cluster-id c1" in text
    assert "AWS_ENDPOINT=http://127.0.0.1:9" in text
    assert "AWS_ALLOW_HTTP=true" in text
    assert "X_EXTRA=1" in text
    assert "AWS_PROFILE" not in text
    assert "AWS_SESSION_TOKEN" not in text
    assert broker.storage == storage


# -- kill and restart (real tansu, memory storage) ---------------------------------------
@pytest.mark.integration
def test_embedded_broker_when_killed_then_start_reuses_port_and_cluster_id() -> None:
    broker = EmbeddedBroker().start()
    try:
        port, pid, cluster_id = broker.port, broker.pid, broker.cluster_id
        assert port is not None and pid is not None
        log_path = broker.log_path
        assert log_path is not None

        broker.kill()

        assert not broker.is_running
        assert _process_gone(pid)
        assert broker.port == port
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"  # clients keep this address
        broker.kill()  # idempotent

        broker.start()

        assert broker.port == port
        assert broker.pid != pid
        assert broker.cluster_id == cluster_id
        assert log_path.read_text().count("listening on") == 2  # one log across restarts

        restarted_pid = broker.pid
        assert restarted_pid is not None
        broker.restart(down_s=0.1, graceful=True)
        assert broker.port == port
        assert _process_gone(restarted_pid)
    finally:
        broker.stop()
    assert broker.port is None
    assert _port_free(port)
    assert not log_path.exists()


@pytest.mark.integration
def test_embedded_broker_when_process_died_by_itself_then_start_restarts_it() -> None:
    broker = EmbeddedBroker().start()
    try:
        port, pid = broker.port, broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while broker.is_running and time.monotonic() < deadline:
            time.sleep(0.02)

        broker.start()

        assert broker.is_running
        assert broker.port == port
    finally:
        broker.stop()


@pytest.mark.integration
def test_embedded_broker_when_stopped_after_kill_then_directory_removed() -> None:
    broker = EmbeddedBroker().start()
    log_path = broker.log_path
    assert log_path is not None

    broker.kill()
    broker.stop()

    assert not log_path.exists()
    with pytest.raises(BrokerStartError, match="not started"):
        _ = broker.bootstrap_servers
    with pytest.raises(BrokerStartError, match="not started"):
        broker.restart()


# -- S3Emulator (real moto_server) -------------------------------------------------------
@pytest.mark.integration
def test_s3_emulator_when_started_then_buckets_work_and_stop_frees_everything() -> None:
    if not s3emulator.moto_available():
        skip_or_fail("moto[server] is not installed")
    emulator = S3Emulator().start()
    try:
        port, pid = emulator.port, emulator.pid
        assert port is not None and pid is not None
        assert emulator.endpoint_url == f"http://127.0.0.1:{port}"

        storage = emulator.storage()
        assert emulator.create_bucket("named-bucket") == "named-bucket"
        status, listing = _http(port, "GET", "/")
        assert status == 200
        assert f"<Name>{storage.bucket}</Name>".encode() in listing
        assert b"<Name>named-bucket</Name>" in listing
        assert storage.endpoint_url == emulator.endpoint_url
        with pytest.raises(S3EmulatorError, match="already started"):
            emulator.start()
    finally:
        emulator.stop()
    assert _process_gone(pid)
    assert _port_free(port)
    emulator.stop()  # idempotent


@pytest.mark.integration
def test_s3_emulator_when_port_taken_then_error_without_starting_a_second_server() -> None:
    if not s3emulator.moto_available():
        skip_or_fail("moto[server] is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(S3EmulatorError, match="already in use"):
            S3Emulator(port=port).start()
