"""Run any registration function on the runtime: ``python -m alchemiser_common.runtime MOD:FUNC``.

Services have their own ``python -m alchemiser_<svc>``; this entry point serves tests and ad-hoc
consumers. The service name comes from ``ALCHEMISER_SERVICE_NAME``.
"""

from __future__ import annotations

import importlib
import sys

from alchemiser_common.runtime.service import run_service


def main(argv: list[str]) -> int:
    """Import ``module:function`` and run it as a service."""
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m alchemiser_common.runtime MODULE:FUNCTION", file=sys.stderr)
        return 2
    module_name, function_name = argv[0].split(":", 1)
    register = getattr(importlib.import_module(module_name), function_name)
    return run_service("alchemiser", register)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
