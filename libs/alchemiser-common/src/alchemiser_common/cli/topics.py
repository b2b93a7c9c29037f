"""`alchemiser topics` commands: create the catalog's topics, list what the cluster has.

Defaults come from ``CommonSettings`` (``ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS``,
``ALCHEMISER_TOPICS__PARTITIONS``, ``ALCHEMISER_TOPICS__REPLICATION_FACTOR``); options win.
Exit codes: 0 done, 1 the broker is unreachable or refused, 2 invalid settings.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.kafka.clients import KafkaAdmin
from alchemiser_common.kafka.exceptions import KafkaClientError
from alchemiser_common.settings import CommonSettings, KafkaSettings, load_settings
from alchemiser_common.topics import ALL_TOPICS, CREATE_TIMEOUT_S, create_topics

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Create and list the Kafka topics.")

_out = Console()
_err = Console(stderr=True)

# librdkafka's own connection complaints would bury the one-line message this command prints.
_QUIET_CLIENT = {"log_level": 0}

BootstrapOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        help="host:port list (default: ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS).",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds to wait for the broker before failing."),
]


def _settings() -> CommonSettings:
    try:
        return load_settings(CommonSettings)
    except ConfigurationError as err:
        _err.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


def _kafka(settings: CommonSettings, bootstrap_servers: str | None) -> KafkaSettings:
    if bootstrap_servers is None:
        return settings.kafka
    return settings.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})


@app.command("create")
def create(
    bootstrap_servers: BootstrapOption = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1, help="Partitions per new topic (default: ALCHEMISER_TOPICS__PARTITIONS)."
        ),
    ] = None,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            min=1, help="Replicas per new topic (default: ALCHEMISER_TOPICS__REPLICATION_FACTOR)."
        ),
    ] = None,
    timeout: TimeoutOption = CREATE_TIMEOUT_S,
) -> None:
    """Create every event topic and its .dlq twin; existing topics are left alone."""
    settings = _settings()
    admin = KafkaAdmin(_kafka(settings, bootstrap_servers), overrides=_QUIET_CLIENT)
    try:
        report = create_topics(
            admin,
            partitions=partitions or settings.topics.partitions,
            replication_factor=replication_factor or settings.topics.replication_factor,
            timeout=timeout,
        )
    except KafkaClientError as err:
        _err.print(f"[red]error:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"Topics at {report.bootstrap_servers}")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("status")
    for status in report.topics:
        table.add_row(
            status.name, str(status.partitions), "created" if status.created else "existed"
        )
    _out.print(table)
    _out.print(f"{len(report.created)} created, {len(report.existing)} existed")


@app.command("list")
def list_topics(
    bootstrap_servers: BootstrapOption = None,
    timeout: TimeoutOption = CREATE_TIMEOUT_S,
) -> None:
    """List the cluster's topics with partition counts, marking the catalog's topics."""
    settings = _settings()
    admin = KafkaAdmin(_kafka(settings, bootstrap_servers), overrides=_QUIET_CLIENT)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception as err:  # KafkaException: timed out or transport failure
        _err.print(
            f"[red]error:[/red] no Kafka broker answered at {admin.bootstrap_servers} "
            f"within {timeout:g} s: {err}",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    table = Table(title=f"Topics at {admin.bootstrap_servers}")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("catalog")
    for name in sorted(metadata.topics):
        topic = metadata.topics[name]
        table.add_row(name, str(len(topic.partitions)), "yes" if name in ALL_TOPICS else "")
    _out.print(table)
    missing = [name for name in ALL_TOPICS if name not in metadata.topics]
    if missing:
        _out.print(f"missing catalog topics: {', '.join(missing)}")
