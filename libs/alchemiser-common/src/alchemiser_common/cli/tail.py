"""``alchemiser tail [TOPIC...]``: follow the workflow topics, one line (or JSON) per event.

Without topics it follows the six event topics; dead-letter topics (``<topic>.dlq``) may be
named too (their records are decoded with the original topic's schema and show the reason).
It joins no consumer group and commits nothing, so it never disturbs a service. It starts at
the end of every partition (``--from-beginning``: at the start) and prints ``following ...``
on standard error once it is in place: every record produced after that line is shown.
``--correlation-id`` keeps one workflow's records; ``--limit N`` stops after N of them.
Ctrl-C stops it with exit code 0. ``--json`` prints one JSON object per line and nothing else
on standard output.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from alchemiser_common.cli.inspect import (
    DEFAULT_TIMEOUT_S,
    Decoded,
    Decoder,
    OperatorError,
    TopicReader,
    dead_letter_summary,
    format_time,
    operator_errors,
    print_json,
    summarize,
    target,
)
from alchemiser_common.topics import EVENT_TOPICS, is_dlq_topic

__all__ = ["app", "command"]

_POLL_S = 0.5

app = typer.Typer(add_completion=False, help="Follow the workflow topics.")


def _line(item: Decoded) -> str:
    record = item.record
    when = format_time(item.event.occurred_at if item.event is not None else record.timestamp)
    if is_dlq_topic(record.topic):
        text = dead_letter_summary(record)
    elif item.event is not None:
        text = summarize(item.event)
    else:
        text = f"undecodable: {item.error}"
    workflow = item.correlation_id or "-"
    return f"{when} {record.position} {item.event_type} workflow={workflow} {text}"


@app.command()
def tail(  # noqa: PLR0917 - Typer maps each parameter to one option
    topics: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TOPIC",
            help="Topics to follow (default: the six event topics).",
            show_default=False,
        ),
    ] = None,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="Only this workflow's records.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the first record, not the end.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Stop after N records.")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", "-b", help="Kafka host:port list (default: settings)."),
    ] = None,
    registry: Annotated[
        str | None, typer.Option("--registry", help="Schema registry URL (default: settings).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds the broker and registry get.")
    ] = DEFAULT_TIMEOUT_S,
) -> None:
    """Follow topics, printing one line per event (Ctrl-C stops, exit 0)."""
    names = list(dict.fromkeys(topics or EVENT_TOPICS))
    printed = 0
    with operator_errors():
        wanted = None
        if correlation_id is not None:
            try:
                wanted = str(uuid.UUID(correlation_id))
            except ValueError:
                raise OperatorError(f"--correlation-id {correlation_id!r} is not a UUID") from None
        where = target(bootstrap_servers, registry, timeout)
        decoder = Decoder(where)
        reader = TopicReader(where)
        try:
            reader.follow(names, from_beginning=from_beginning)
            typer.echo(
                f"following {', '.join(names)} at {where.bootstrap_servers} (Ctrl-C to stop)",
                err=True,
            )
            while limit is None or printed < limit:
                for record in reader.poll(_POLL_S):
                    header = record.header("correlation_id")
                    if wanted is not None and header is not None and header != wanted:
                        continue
                    item = decoder.decode(record)
                    if wanted is not None and item.correlation_id != wanted:
                        continue
                    if as_json:
                        print_json(item.to_json())
                    else:
                        typer.echo(_line(item))
                    printed += 1
                    if limit is not None and printed >= limit:
                        break
        except KeyboardInterrupt:
            pass
        finally:
            reader.close()


command = typer.main.get_command(app)
"""The ``tail`` command itself (one command, not a group): what ``alchemiser tail`` loads."""
