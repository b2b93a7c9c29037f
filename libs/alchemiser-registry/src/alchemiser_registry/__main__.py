"""``python -m alchemiser_registry serve --port P --data-dir DIR``.

The same command as ``alchemiser registry serve``, without importing the other ``alchemiser``
command groups, so test fixtures can start the registry with ``sys.executable -m``. A data
directory that cannot hold the database prints one ``error:`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from alchemiser_registry.server import DEFAULT_HOST, DEFAULT_PORT, serve
from alchemiser_registry.store import DataDirError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the ``serve`` command line, configure logging and serve until a signal.

    Returns the exit status: 0 after a signal, 2 when the data directory is unusable.
    """
    parser = argparse.ArgumentParser(prog="python -m alchemiser_registry")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="Serve the registry until SIGTERM/SIGINT.")
    serve_parser.add_argument("--data-dir", type=Path, required=True)
    serve_parser.add_argument("--host", default=DEFAULT_HOST)
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free one")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(args.data_dir, host=args.host, port=args.port)
    except DataDirError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
