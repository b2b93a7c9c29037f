"""The ``alchemiser`` operator command, with command groups loaded only when they run.

Built-in groups live in this package; each installed package (the services, the schema
registry) adds its own group through the ``alchemiser.commands`` entry-point group
(``strategy = "alchemiser_strategy.cli:app"``), so this library never imports a service or
another library. A group's module is imported only when that group runs (or its ``--help`` is
asked for): ``alchemiser --help`` reads the entry points' metadata and nothing else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

import typer
from typer import _click as click  # Typer >= 0.29 vendors click: its groups use these types
from typer.core import TyperGroup

__all__ = ["ENTRY_POINT_GROUP", "build_app", "main"]

ENTRY_POINT_GROUP = "alchemiser.commands"


@dataclass(frozen=True, slots=True)
class _LazyCommand:
    """Where a command lives (``module:attribute``: a ``typer.Typer`` group, or one click
    command such as ``typer.main.get_command(app)``) and its help line."""

    target: str
    help: str


_BUILTIN = {
    "schemas": _LazyCommand(
        "alchemiser_common.cli.schemas:app", "Check and register the Avro schemas."
    ),
    "topics": _LazyCommand(
        "alchemiser_common.cli.topics:app", "Create every topic and its dead-letter twin."
    ),
    "workflow": _LazyCommand(
        "alchemiser_common.cli.workflow:app",
        "Start trading workflows (the CronJob's trigger), list them, show one.",
    ),
    "tail": _LazyCommand(
        "alchemiser_common.cli.tail:command", "Follow the workflow topics, one line per event."
    ),
    "dlq": _LazyCommand("alchemiser_common.cli.dlq:app", "List, show and redrive dead letters."),
    "replay": _LazyCommand(
        "alchemiser_common.cli.replay:command",
        "Re-produce a range of a topic's records (consumers dedupe them).",
    ),
}


@cache
def _commands() -> dict[str, _LazyCommand]:
    """Built-in groups and the installed packages' groups, by name (nothing imported)."""
    commands = dict(_BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        summary = entry.dist.metadata["Summary"] if entry.dist is not None else None
        commands.setdefault(entry.name, _LazyCommand(entry.value, summary or ""))
    return commands


class _LazyGroup(TyperGroup):
    """A group that lists its commands from :func:`_commands` and imports one on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        spec = _commands().get(cmd_name)
        if command is not None or spec is None:
            return command
        module_name, _, attribute = spec.target.partition(":")
        found = getattr(importlib.import_module(module_name), attribute)
        loaded = found if isinstance(found, click.Command) else typer.main.get_group(found)
        loaded.name = cmd_name
        _plain_help(loaded)
        return loaded

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's plain layout: the rich one would import every group to read its help
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec.help) for name, spec in sorted(_commands().items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _plain_help(command: click.Command) -> None:
    """Click's plain help layout for ``command`` and its subcommands (no Rich import)."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def build_app() -> typer.Typer:
    """The ``alchemiser`` command: every group listed, each imported when it runs."""
    app = typer.Typer(
        cls=_LazyGroup,
        no_args_is_help=True,
        rich_markup_mode=None,
        help="Alchemiser operator command.",
    )

    @app.callback()
    def root() -> None:
        """Alchemiser operator command."""

    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()
