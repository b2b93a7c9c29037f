"""The offline gate ``alchemiser schemas check`` and ``check_all``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from alchemiser_common.avro_compat import CompatibilityLevel
from alchemiser_common.cli import schemas as schemas_cli
from alchemiser_common.schemas import SchemaCatalog, check_all

PLANNED = "portfolio.rebalance.planned.v1"


def _cli() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(schemas_cli.app, name="schemas")
    return root


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_cli(), ["schemas", "check", *args])
    return result.exit_code, result.output


@pytest.fixture
def schemas_copy(tmp_path: Path) -> Path:
    """A private copy of the repository's schemas/avro."""
    target = tmp_path / "avro"
    shutil.copytree(SchemaCatalog.discover().root, target)
    return target


def _v1(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / PLANNED / "v1.avsc").read_text())
    return data


def _release(root: Path, version: int, schema: dict[str, Any]) -> None:
    (root / PLANNED / f"v{version}.avsc").write_text(json.dumps(schema, indent=2))


def _with_field(schema: dict[str, Any], **field: Any) -> dict[str, Any]:
    return {**schema, "fields": [*schema["fields"], {"doc": "added", **field}]}


def test_check_all_when_repository_schemas_then_no_problem() -> None:
    assert check_all() == []


def test_cli_when_repository_schemas_then_exit_0_with_summary(schemas_copy: Path) -> None:
    code, output = _run("--dir", str(schemas_copy))

    assert code == 0, output
    assert "6 subject(s), 6 version(s)" in output
    assert "compatible at BACKWARD_TRANSITIVE" in output


def test_cli_when_v2_adds_field_without_default_then_exit_1_naming_field(
    schemas_copy: Path,
) -> None:
    _release(schemas_copy, 2, _with_field(_v1(schemas_copy), name="foo", type="string"))

    code, output = _run("--dir", str(schemas_copy))

    assert code == 1
    assert (
        f"{PLANNED}-value: v2 vs v1 (backward): reader_field_missing_default_value at field(s) foo"
    ) in output


def test_cli_when_v2_adds_field_with_default_then_exit_0(schemas_copy: Path) -> None:
    _release(schemas_copy, 2, _with_field(_v1(schemas_copy), name="foo", type="string", default=""))

    code, output = _run("--dir", str(schemas_copy))

    assert code == 0, output
    assert "7 version(s)" in output


def test_check_when_v3_conflicts_only_with_v1_then_transitive_level_catches_it(
    schemas_copy: Path,
) -> None:
    v1 = _v1(schemas_copy)
    _release(schemas_copy, 2, _with_field(v1, name="foo", type="string", default=""))
    _release(schemas_copy, 3, _with_field(v1, name="foo", type="string"))  # default dropped

    transitive = check_all(CompatibilityLevel.BACKWARD_TRANSITIVE, schemas_copy)
    latest_only = check_all(CompatibilityLevel.BACKWARD, schemas_copy)

    assert [(p.subject, p.version, p.against, p.fields) for p in transitive] == [
        (f"{PLANNED}-value", 3, 1, ("foo",))
    ]
    assert latest_only == []
    assert _run("--dir", str(schemas_copy), "--level", "backward")[0] == 0
    assert _run("--dir", str(schemas_copy))[0] == 1


def test_cli_when_forward_level_and_field_removed_without_default_then_exit_1(
    schemas_copy: Path,
) -> None:
    v1 = _v1(schemas_copy)
    v2 = {**v1, "fields": [f for f in v1["fields"] if f["name"] != "account_snapshot_id"]}
    _release(schemas_copy, 2, v2)

    code, output = _run("--dir", str(schemas_copy), "--level", "FULL_TRANSITIVE")

    assert code == 1
    assert "v2 vs v1 (forward)" in output
    assert "account_snapshot_id" in output


def test_cli_when_version_does_not_parse_then_exit_1_naming_version(schemas_copy: Path) -> None:
    (schemas_copy / PLANNED / "v2.avsc").write_text('{"type": "record", "name": "X"}')

    code, output = _run("--dir", str(schemas_copy))

    assert code == 1
    assert f"{PLANNED}-value: v2: invalid Avro schema" in output


def test_cli_when_directory_has_no_schemas_then_exit_1(tmp_path: Path) -> None:
    code, output = _run("--dir", str(tmp_path))

    assert code == 1
    assert "no <topic>/v<N>.avsc schemas found" in output


def test_cli_when_directory_missing_then_exit_nonzero(tmp_path: Path) -> None:
    code, _ = _run("--dir", str(tmp_path / "missing"))

    assert code != 0
