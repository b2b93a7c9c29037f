"""Import every module of one package from an environment holding only its declared deps.

Run by ``make isolation`` inside ``uv sync --package alchemiser-<name> --no-dev`` environments,
so an import the package does not declare fails in CI, not in production. Alembic ``env.py``
modules only run inside Alembic and are skipped.

``--forbid dist1,dist2`` also fails when any of those distributions is installed in the
environment (``importlib.metadata``): what a deployable must never carry, such as the
registry server's web stack or the embedded broker binary in a service image.

    python scripts/check_isolation.py alchemiser_strategy --forbid fastapi,alchemiser-broker
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import sys
from collections.abc import Iterable, Sequence


def import_failures(package_name: str) -> list[str]:
    """``module: error`` for every module of ``package_name`` that does not import."""
    package = importlib.import_module(package_name)
    failures = []
    for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        if module.name.endswith(".env") and "migrations" in module.name:
            continue
        try:
            importlib.import_module(module.name)
        except Exception as err:  # report every failure, not just the first
            failures.append(f"{module.name}: {err!r}")
    return failures


def installed(distributions: Iterable[str]) -> list[str]:
    """``name==version`` of each of ``distributions`` that is installed here."""
    found = []
    for name in distributions:
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Check one package; print every problem; exit 1 if there is any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("package", help="import name of the package, e.g. alchemiser_strategy")
    parser.add_argument(
        "--forbid",
        default="",
        help="comma-separated distributions that must not be installed in this environment",
    )
    args = parser.parse_args(argv)
    problems = [f"undeclared or broken import in {f}" for f in import_failures(args.package)]
    forbidden = [name.strip() for name in args.forbid.split(",") if name.strip()]
    problems += [f"forbidden distribution installed: {d}" for d in installed(forbidden)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.package}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
