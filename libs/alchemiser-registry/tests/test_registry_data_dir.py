"""A data directory that cannot hold the registry's database: one line and exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alchemiser_registry.cli import app
from alchemiser_registry.store import DATABASE_FILE, DataDirError, SchemaStore


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


def test_store_when_data_dir_is_a_file_then_data_dir_error(tmp_path: Path) -> None:
    path = _file(tmp_path)

    with pytest.raises(DataDirError, match=f"registry data dir {path} is not a directory"):
        SchemaStore(path)


def test_store_when_data_dir_under_a_file_then_cannot_be_created(tmp_path: Path) -> None:
    path = _file(tmp_path) / "registry"

    with pytest.raises(DataDirError, match="cannot be created: Not a directory"):
        SchemaStore(path)


def test_store_when_database_file_is_not_sqlite_then_cannot_use_it(tmp_path: Path) -> None:
    (tmp_path / DATABASE_FILE).write_bytes(b"garbage, not an SQLite database, " * 4)

    with pytest.raises(DataDirError, match=f"cannot use {DATABASE_FILE}"):
        SchemaStore(tmp_path)


def test_store_when_database_path_is_a_directory_then_cannot_open_it(tmp_path: Path) -> None:
    (tmp_path / DATABASE_FILE).mkdir()

    with pytest.raises(DataDirError, match=f"cannot open {DATABASE_FILE}"):
        SchemaStore(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_store_when_data_dir_read_only_then_data_dir_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(DataDirError, match=str(tmp_path)):
            SchemaStore(tmp_path)
    finally:
        tmp_path.chmod(0o755)


def _assert_one_line(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: registry data dir ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_module_serve_when_data_dir_is_a_file_then_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _file(tmp_path)

    result = subprocess.run(
        [sys.executable, "-m", "alchemiser_registry", "serve", "--data-dir", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    _assert_one_line(result.stderr, str(path), "not a directory")
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_serve_when_data_dir_is_a_file_then_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _file(tmp_path)

    result = CliRunner().invoke(app, ["serve", "--data-dir", str(path), "--port", "0"])

    assert result.exit_code == 2
    _assert_one_line(result.stderr, str(path), "not a directory")
    assert result.stdout == ""
