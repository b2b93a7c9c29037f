"""Import every module of one service from an environment holding only its declared deps.

Run by ``make isolation`` inside ``uv sync --package alchemiser-<svc> --no-dev`` environments,
so an import the service does not declare fails in CI, not in production. Alembic ``env.py``
modules only run inside Alembic and are skipped.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def main(package_name: str) -> int:
    """Import ``package_name`` and all its submodules; print failures; exit 1 if any."""
    package = importlib.import_module(package_name)
    failures = []
    for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        if module.name.endswith(".env") and ".migrations" in module.name:
            continue
        try:
            importlib.import_module(module.name)
        except Exception as err:  # report every failure, not just the first
            failures.append(f"{module.name}: {err!r}")
    for failure in failures:
        print(f"undeclared or broken import in {failure}", file=sys.stderr)
    print(f"{package_name}: {'ok' if not failures else f'{len(failures)} failure(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
