"""Finding the schemas (package data) and listing subjects and released versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import alchemiser_common.schemas
from alchemiser_common.errors import SchemaError
from alchemiser_common.schemas import (
    PACKAGED_SCHEMAS_DIR,
    SCHEMAS_DIR_ENV,
    SchemaCatalog,
    find_schemas_dir,
    subject_for_topic,
    topic_for_subject,
)

RECORD = {"type": "record", "name": "R", "doc": "d", "fields": []}


def _write(root: Path, topic: str, *names: str) -> None:
    (root / topic).mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / topic / name).write_text(json.dumps(RECORD))


def test_find_when_nothing_set_then_packaged_schemas_whatever_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "schemas" / "avro").mkdir(parents=True)
    nested = tmp_path / "services" / "strategy" / "src"
    nested.mkdir(parents=True)
    monkeypatch.delenv(SCHEMAS_DIR_ENV, raising=False)
    monkeypatch.chdir(nested)

    root = find_schemas_dir()

    assert root == PACKAGED_SCHEMAS_DIR
    assert root != (tmp_path / "schemas" / "avro").resolve()
    assert root.parent == Path(alchemiser_common.schemas.__file__).resolve().parent


def test_find_when_repository_path_used_then_it_links_to_the_packaged_schemas() -> None:
    repository_link = Path(__file__).resolve().parents[4] / "schemas" / "avro"

    assert repository_link.is_symlink()
    assert repository_link.resolve() == PACKAGED_SCHEMAS_DIR


def test_find_when_env_set_then_env_wins_and_argument_wins_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env, from_arg = tmp_path / "env", tmp_path / "arg"
    from_env.mkdir()
    from_arg.mkdir()
    monkeypatch.setenv(SCHEMAS_DIR_ENV, str(from_env))

    assert find_schemas_dir() == from_env.resolve()
    assert find_schemas_dir(from_arg) == from_arg.resolve()


def test_find_when_explicit_directory_missing_then_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="does not exist"):
        find_schemas_dir(tmp_path / "nope")


def test_find_when_nothing_set_then_repository_schemas_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SCHEMAS_DIR_ENV, raising=False)

    root = find_schemas_dir()

    assert root.parts[-2:] == ("schemas", "avro")
    assert (root / "workflow.started.v1" / "v1.avsc").is_file()


def test_versions_when_ten_or_more_then_sorted_numerically(tmp_path: Path) -> None:
    _write(tmp_path, "orders.v1", "v10.avsc", "v2.avsc", "v1.avsc")
    catalog = SchemaCatalog(tmp_path)

    assert [v.version for v in catalog.versions("orders.v1-value")] == [1, 2, 10]
    assert catalog.current("orders.v1-value").version == 10
    assert catalog.current("orders.v1").path.name == "v10.avsc"
    assert catalog.load("orders.v1-value", 2) == RECORD


def test_subjects_when_listed_then_topic_value_names_sorted(tmp_path: Path) -> None:
    _write(tmp_path, "b.topic", "v1.avsc")
    _write(tmp_path, "a.topic", "v1.avsc")
    (tmp_path / "empty.topic").mkdir()

    assert SchemaCatalog(tmp_path).subjects() == ["a.topic-value", "b.topic-value"]


def test_get_when_version_or_subject_unknown_then_schema_error(tmp_path: Path) -> None:
    _write(tmp_path, "a.topic", "v1.avsc")
    catalog = SchemaCatalog(tmp_path)

    with pytest.raises(SchemaError, match="no version 3"):
        catalog.get("a.topic-value", 3)
    with pytest.raises(SchemaError, match="no schemas"):
        catalog.versions("other-value")


def test_layout_when_stray_names_or_gaps_then_reported(tmp_path: Path) -> None:
    _write(tmp_path, "a.topic", "v1.avsc", "v3.avsc", "v2-draft.avsc")
    (tmp_path / "loose.avsc").write_text("{}")

    problems = SchemaCatalog(tmp_path).layout_problems()

    assert problems == [
        ("a.topic/v2-draft.avsc", "not named v<N>.avsc"),
        (
            "a.topic-value",
            "versions [1, 3] are not 1..N (a released version was removed or skipped)",
        ),
        ("loose.avsc", "schema outside a topic directory"),
    ]


def test_subject_when_converted_then_topic_name_strategy() -> None:
    assert subject_for_topic("workflow.failed.v1") == "workflow.failed.v1-value"
    assert topic_for_subject("workflow.failed.v1-value") == "workflow.failed.v1"
    with pytest.raises(SchemaError):
        topic_for_subject("workflow.failed.v1-key")
