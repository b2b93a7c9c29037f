"""Run any service declaration on the runtime: ``python -m alchemiser_common.runtime MOD:ATTR``.

Services have their own ``python -m alchemiser_<svc>``; this entry point serves tests and ad-hoc
consumers (``ATTR`` names a :class:`~alchemiser_common.runtime.declaration.Service`).
``ALCHEMISER_SERVICE_NAME`` replaces the declared name.
"""

from __future__ import annotations

import importlib
import sys

from alchemiser_common.runtime.declaration import Service


def main(argv: list[str]) -> int:
    """Import ``module:attribute`` (a ``Service``) and run it."""
    if not argv or ":" not in argv[0]:
        print("usage: python -m alchemiser_common.runtime MODULE:SERVICE [--help]", file=sys.stderr)
        return 2
    module_name, attribute = argv[0].split(":", 1)
    service = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(service, Service):
        print(f"{argv[0]} is not a Service declaration", file=sys.stderr)
        return 2
    return service.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
