"""The ``alchemiser`` operator command.

Built-in command groups live in this package; each installed service adds its own group
through the ``alchemiser.commands`` entry-point group
(``strategy = "alchemiser_strategy.cli:app"``), so this library never imports a service.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from alchemiser_common.cli import registry, schemas, topics, workflow

__all__ = ["ENTRY_POINT_GROUP", "build_app", "main"]

ENTRY_POINT_GROUP = "alchemiser.commands"


def build_app() -> typer.Typer:
    """Assemble the command from the built-in groups and the installed services' groups."""
    app = typer.Typer(no_args_is_help=True, help="Alchemiser operator command.")
    app.add_typer(registry.app, name="registry")
    app.add_typer(schemas.app, name="schemas")
    app.add_typer(topics.app, name="topics")
    app.add_typer(workflow.app, name="workflow")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        sub = entry.load()
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=entry.name)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()
