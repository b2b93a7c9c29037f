"""`alchemiser registry` commands: run the project's schema registry server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from alchemiser_registry.server import DEFAULT_HOST, DEFAULT_PORT, serve
from alchemiser_registry.store import DataDirError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The schema registry server.")


@app.callback()
def _group() -> None:
    """The schema registry server (Confluent Schema Registry REST API)."""


@app.command("serve")
def serve_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Directory of the registry's SQLite file.")
    ],
    host: Annotated[str, typer.Option(help="Address to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = DEFAULT_PORT,
) -> None:
    """Serve the registry in the foreground until SIGTERM or SIGINT.

    A data directory that cannot hold the database prints one ``error:`` line; exit status 2.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(data_dir, host=host, port=port)
    except DataDirError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
