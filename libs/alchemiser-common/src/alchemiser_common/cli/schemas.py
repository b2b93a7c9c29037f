"""`alchemiser schemas` commands.

* ``check``: the offline gate (CI, before merge); exit 1 when a schema is incompatible.
* ``register``: added separately (the deploy step that registers the schemas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alchemiser_common.avro_compat import CompatibilityLevel
from alchemiser_common.errors import SchemaError
from alchemiser_common.schemas import DEFAULT_LEVEL, SCHEMAS_DIR_ENV, SchemaCatalog, check_catalog

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="schemas commands.")

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help=f"The schemas directory (default: ${SCHEMAS_DIR_ENV}, else the packaged schemas).",
        file_okay=False,
    ),
]
LevelOption = Annotated[
    CompatibilityLevel,
    typer.Option("--level", case_sensitive=False, help="Compatibility level to enforce."),
]


@app.command("check")
def check(level: LevelOption = DEFAULT_LEVEL, directory: DirOption = None) -> None:
    """Check every current schema against all released versions; exit 1 on a problem."""
    try:
        catalog = SchemaCatalog.discover(directory)
        report = check_catalog(catalog, level)
    except SchemaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    if report.problems:
        for problem in report.problems:
            typer.echo(problem.describe())
        typer.echo(
            f"{len(report.problems)} problem(s) in {report.root} at {report.level.value}",
            err=True,
        )
        raise typer.Exit(code=1)
    typer.echo(
        f"{report.subjects} subject(s), {report.versions} version(s) in {report.root}: "
        f"compatible at {report.level.value}"
    )


# `register` (upload to the schema registry) is added here by the deploy-step work.


@app.command("register")
def register(
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="Schema registry URL (default: $ALCHEMISER_REGISTRY__URL).",
        ),
    ] = None,
    directory: DirOption = None,
) -> None:
    """Register every released version of every schema, oldest first (idempotent).

    The deploy step runs this before the services start; services never auto-register.
    An incompatible schema (HTTP 409) stops with a message naming the subject and version.
    """
    from alchemiser_common.schemas.register import RegistrationRefusedError, register_all
    from alchemiser_common.settings import CommonSettings, load_settings

    url = registry or load_settings(CommonSettings).registry.url
    try:
        results = register_all(url, SchemaCatalog.discover(directory))
    except RegistrationRefusedError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=1) from err
    except SchemaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    for result in results:
        typer.echo(f"{result.subject} v{result.file_version}: schema id {result.schema_id}")
    typer.echo(f"{len(results)} schema version(s) registered at {url}")
