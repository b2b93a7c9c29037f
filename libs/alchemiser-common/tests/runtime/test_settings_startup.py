"""Start-up configuration: a bad value stops the process naming the setting; secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.settings import CommonSettings, default_instance_id, load_settings

STAGE = "alchemiser_devtools.pipeline:STAGE_ONE"


def _run(env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alchemiser_common.runtime", STAGE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_start_when_setting_invalid_then_exit_2_with_one_line_naming_it() -> None:
    result = _run({"ALCHEMISER_RUNTIME__BATCH_SIZE": "0"}, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "ALCHEMISER_RUNTIME__BATCH_SIZE" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_start_when_pause_step_unknown_then_exit_2_naming_it(tmp_path: Path) -> None:
    result = _run(
        {
            "ALCHEMISER_RUNTIME__PAUSE_AT": "somewhere",
            "ALCHEMISER_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        },
        timeout=60,
    )
    assert result.returncode == 2
    assert "ALCHEMISER_RUNTIME__PAUSE_AT" in result.stdout


def test_start_when_secrets_configured_then_effective_config_logged_masked(tmp_path: Path) -> None:
    secrets = {
        "ALCHEMISER_KAFKA__SASL_PASSWORD": "kafka-secret-3141",
        "ALCHEMISER_REGISTRY__BASIC_AUTH_USER_INFO": "user:registry-secret-2718",
        "ALCHEMISER_DATABASE__URL": f"sqlite:///{tmp_path / 'db-secret-1618.sqlite'}",
    }
    env = {
        **os.environ,
        **secrets,
        "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "ALCHEMISER_OBSERVABILITY__METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "out.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "alchemiser_common.runtime", STAGE],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while '"message": "starting"' not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait(timeout=10)
    output = log_path.read_text()
    assert '"message": "starting"' in output
    assert "**********" in output
    for marker in ("kafka-secret-3141", "registry-secret-2718", "db-secret-1618"):
        assert marker not in output


def test_load_settings_when_secret_section_invalid_then_value_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_DATABASE__URL", "postgresql://u:hunter2@db/x")
    monkeypatch.setenv("ALCHEMISER_TOPICS__PARTITIONS", "zero")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(CommonSettings)
    assert "ALCHEMISER_TOPICS__PARTITIONS" in str(caught.value)
    assert "'zero'" in str(caught.value)
    monkeypatch.setenv("ALCHEMISER_TOPICS__PARTITIONS", "3")
    monkeypatch.setenv("ALCHEMISER_REGISTRY__URL", "ftp://user:hunter2@registry")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(CommonSettings)
    assert "ALCHEMISER_REGISTRY__URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("servers", ["", "  ", "127.0.0.1:9092,,127.0.0.1:9093", ","])
def test_load_settings_when_bootstrap_servers_empty_then_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, servers: str
) -> None:
    monkeypatch.setenv("ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS", servers)

    with pytest.raises(ConfigurationError) as caught:
        load_settings(CommonSettings)

    assert "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_settings_when_bootstrap_servers_spaced_then_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS", " k1:9092 , k2:9092 ")

    assert load_settings(CommonSettings).kafka.bootstrap_servers == "k1:9092,k2:9092"


def test_start_when_bootstrap_servers_empty_then_exit_2_with_one_line_naming_it() -> None:
    result = _run({"ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS": ""}, timeout=60)

    assert result.returncode == 2
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS" in lines[0]


_PRINT_INSTANCE_ID = (
    "import os; from alchemiser_common.settings import CommonSettings, load_settings; "
    "print(load_settings(CommonSettings).instance_id, os.getpid())"
)


def test_instance_id_when_unset_then_hostname_and_pid_so_two_processes_differ() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ALCHEMISER_INSTANCE_ID"}

    def instance_id() -> tuple[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", _PRINT_INSTANCE_ID],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        identifier, pid = result.stdout.split()
        return identifier, pid

    (first, first_pid), (second, second_pid) = instance_id(), instance_id()

    assert first != second  # two instances on one machine: two transactional ids
    assert first.endswith(f"-{first_pid}") and second.endswith(f"-{second_pid}")
    assert first.removesuffix(first_pid) == second.removesuffix(second_pid)  # the hostname
    assert default_instance_id().endswith(f"-{os.getpid()}")


def test_instance_id_when_set_then_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCHEMISER_INSTANCE_ID", "strategy-7d9f-abcde")

    assert load_settings(CommonSettings).instance_id == "strategy-7d9f-abcde"
