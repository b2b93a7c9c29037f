"""``alchemiser dlq``: list, show and redrive dead letters.

A dead letter (``<topic>.dlq``, written by the runtime, see
:mod:`alchemiser_common.runtime.dlq`) is the original record byte for byte (value, key and
headers) plus ``dlq.*`` headers: reason, error class and message, original topic, partition
and offset, consumer, time. Topic arguments may name the dead-letter topic or its original.

**Redrive** re-produces each chosen dead letter's original value bytes and key to its original
topic and partition, with its original headers (``dlq.*`` removed) and a ``redrive.source``
header naming the dead letter (``<dlq topic>:<partition>:<offset>``), plus ``redrive.at``. The
event bytes are unchanged, so the consumer's dedupe applies as to any record: an event already
handled (same event type and workflow, same content) is a duplicate and changes nothing. The
inbox remembers the dead-lettered record by its position (``dead:<topic>:<partition>:<offset>``),
and the redriven copy has a new offset, so it is processed afresh: handled if it is valid now
(a schema registered since, a bug fixed since), dead-lettered again with the reason otherwise.

Exit codes: 0 done, 1 declined or not delivered, 2 an operator error (unreachable broker,
unknown topic, no such offset) in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from alchemiser_common.cli.inspect import (
    DEFAULT_TIMEOUT_S,
    Decoder,
    OperatorError,
    Outgoing,
    Target,
    TopicReader,
    TopicRecord,
    dead_letter_headers,
    format_time,
    operator_errors,
    print_json,
    reproduce,
    target,
)
from alchemiser_common.topics import DLQ_TOPICS, dlq_topic, is_dlq_topic

__all__ = ["REDRIVE_AT_HEADER", "REDRIVE_SOURCE_HEADER", "app", "redrive_record"]

REDRIVE_SOURCE_HEADER = "redrive.source"
"""Header of a redriven record: the dead letter it came from, ``<dlq topic>:<p>:<offset>``."""
REDRIVE_AT_HEADER = "redrive.at"
"""Header of a redriven record: when it was redriven (ISO 8601, UTC)."""

_DLQ_PREFIX = "dlq."

app = typer.Typer(no_args_is_help=True, help="List, show and redrive dead letters.")

_Servers = Annotated[
    str | None,
    typer.Option("--bootstrap-servers", "-b", help="Kafka host:port list (default: settings)."),
]
_Timeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds the broker gets to answer.")
]
_Partition = Annotated[
    int | None,
    typer.Option(
        "--partition", "-p", min=0, help="The partition (default: the one holding the offset)."
    ),
]


def _dead_topic(name: str) -> str:
    return name if is_dlq_topic(name) else dlq_topic(name)


def _read(where: Target, topics: Sequence[str]) -> list[TopicRecord]:
    with TopicReader(where) as reader:
        return reader.read(reader.whole(topics), "reading dead letters")


def _row(record: TopicRecord) -> dict[str, Any]:
    headers = dead_letter_headers(record)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key_text,
        "reason": headers.get("reason"),
        "error_class": headers.get("error_class"),
        "error_message": headers.get("error_message"),
        "original_topic": headers.get("original_topic"),
        "original_partition": _int(headers.get("original_partition")),
        "original_offset": _int(headers.get("original_offset")),
        "consumer": headers.get("consumer"),
        "failed_at": headers.get("failed_at"),
        "event_type": record.header("event_type"),
        "correlation_id": record.header("correlation_id"),
        "redriven_from": record.header(REDRIVE_SOURCE_HEADER),
    }


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _select(
    records: Sequence[TopicRecord], topic: str, offset: int, partition: int | None
) -> TopicRecord:
    """The dead letter at ``offset`` (of ``partition``); ``OperatorError`` when ambiguous."""
    found = [
        record
        for record in records
        if record.offset == offset and (partition is None or record.partition == partition)
    ]
    if not found:
        where = f"{topic}[{partition}]" if partition is not None else topic
        raise OperatorError(
            f"no dead letter at offset {offset} of {where} (`alchemiser dlq list --topic {topic}`"
            " shows them)"
        )
    if len(found) > 1:
        partitions = ", ".join(str(record.partition) for record in found)
        raise OperatorError(
            f"offset {offset} exists in partitions {partitions} of {topic}: pass --partition"
        )
    return found[0]


@app.command("list")
def list_command(
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic", "-t", help="A dead-letter topic or its original (repeatable; default all)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    bootstrap_servers: _Servers = None,
    timeout: _Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Every dead letter: reason, error class, original topic/partition/offset."""
    topics = list(dict.fromkeys(_dead_topic(name) for name in topic)) if topic else DLQ_TOPICS
    with operator_errors():
        where = target(bootstrap_servers, None, timeout)
        records = _read(where, topics)
    rows = [_row(record) for record in records]
    if as_json:
        print_json(rows)
        return
    console = Console()
    for name in topics:
        mine = [row for row in rows if row["topic"] == name]
        if not mine:
            console.print(f"{name}: no dead letters", soft_wrap=True)
            continue
        table = Table(
            title=f"{name}: {len(mine)} dead letter(s)",
            box=None,
            collapse_padding=True,
            pad_edge=False,
        )
        table.add_column("p:offset", no_wrap=True)
        table.add_column("reason", no_wrap=True)
        table.add_column("error", overflow="fold", ratio=1)
        table.add_column("from p:offset", no_wrap=True)
        table.add_column("failed UTC", no_wrap=True)
        table.add_column("message", overflow="fold", ratio=2)
        for row in mine:
            original = f"{row['original_partition']}:{row['original_offset']}"
            if row["original_topic"] != name.removesuffix(".dlq"):
                original = f"{row['original_topic']}[{original}]"
            failed = row["failed_at"]
            when = _parse_time(failed) if failed else None
            table.add_row(
                f"{row['partition']}:{row['offset']}",
                row["reason"] or "?",
                row["error_class"] or "?",
                original,
                format_time(when)[5:-4] if when else "-",
                (row["error_message"] or "")
                + (f" (redriven from {row['redriven_from']})" if row["redriven_from"] else ""),
            )
        console.print(table)


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@app.command("show")
def show_command(  # noqa: PLR0917 - Typer maps each parameter to one option
    topic: Annotated[str, typer.Argument(help="The dead-letter topic (or its original).")],
    offset: Annotated[int, typer.Argument(min=0, help="The dead letter's offset.")],
    partition: _Partition = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    bootstrap_servers: _Servers = None,
    registry: Annotated[
        str | None, typer.Option("--registry", help="Schema registry URL (default: settings).")
    ] = None,
    timeout: _Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """One dead letter: every header, the key, and the event it holds (or why it does not)."""
    name = _dead_topic(topic)
    with operator_errors():
        where = target(bootstrap_servers, registry, timeout)
        record = _select(_read(where, [name]), name, offset, partition)
        decoded = Decoder(where).decode(record)
    document = decoded.to_json()
    document["headers"] = record.headers_json()
    document["value_bytes"] = len(record.value or b"")
    if as_json:
        print_json(document)
        return
    console = Console()
    table = Table(title=f"dead letter {record.position}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("key", record.key_text or "-")
    table.add_row("value", f"{len(record.value or b'')} bytes")
    table.add_row("timestamp", format_time(record.timestamp))
    for header, text in record.headers_json().items():
        table.add_row(header, text)
    table.add_row("event", decoded.event_type if decoded.event else f"undecodable: {decoded.error}")
    console.print(table)
    if decoded.event is not None:
        console.print_json(data=decoded.event.model_dump(mode="json"))


def redrive_record(record: TopicRecord, *, partitions: int | None = None) -> Outgoing:
    """The record that redrives dead letter ``record`` to its original topic and partition."""
    original = _original(record)
    partition = _int(dead_letter_headers(record).get("original_partition"))
    if partition is not None and partitions is not None and partition >= partitions:
        partition = None  # the topic shrank? let the key choose
    kept = tuple(
        (name, data)
        for name, data in record.headers
        if not name.startswith(_DLQ_PREFIX) and not name.startswith("redrive.")
    )
    marks = (
        (REDRIVE_SOURCE_HEADER, f"{record.topic}:{record.partition}:{record.offset}".encode()),
        (REDRIVE_AT_HEADER, datetime.now(UTC).isoformat().encode()),
    )
    return Outgoing(
        topic=original,
        partition=partition,
        key=record.key,
        value=record.value,
        headers=kept + marks,
        source=record,
    )


@app.command("redrive")
def redrive_command(  # noqa: PLR0917 - Typer maps each parameter to one option
    topic: Annotated[str, typer.Argument(help="The dead-letter topic (or its original).")],
    offset: Annotated[
        list[int] | None,
        typer.Option("--offset", "-o", min=0, help="A dead letter's offset (repeatable)."),
    ] = None,
    redrive_all: Annotated[
        bool, typer.Option("--all", help="Every dead letter of the topic.")
    ] = False,
    partition: _Partition = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    bootstrap_servers: _Servers = None,
    timeout: _Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Re-produce dead letters to their original topic (same value bytes and key)."""
    name = _dead_topic(topic)
    with operator_errors():
        if not offset and not redrive_all:
            raise OperatorError("say which dead letters: --offset O (repeatable) or --all")
        if offset and redrive_all:
            raise OperatorError("--offset and --all exclude each other")
        where = target(bootstrap_servers, None, timeout)
        records = _read(where, [name])
        if redrive_all:
            chosen = [r for r in records if partition is None or r.partition == partition]
        else:
            chosen = [
                _select(records, name, item, partition) for item in dict.fromkeys(offset or [])
            ]
        if not chosen:
            typer.echo(f"no dead letters on {name}", err=True)
            return
        originals = sorted({_original(record) for record in chosen})
        with TopicReader(where) as reader:
            counts = {t: len(parts) for t, parts in reader.partitions(originals).items()}
        outgoing = [redrive_record(r, partitions=counts.get(_original(r))) for r in chosen]
        if not yes and not typer.confirm(
            f"Redrive {len(outgoing)} dead letter(s) of {name} to "
            f"{', '.join(originals)} at {where.bootstrap_servers}?",
            err=True,
        ):
            typer.echo("nothing redriven", err=True)
            raise typer.Exit(1)
        delivered = reproduce(where, outgoing, f"redriving {name}")
    rows = [
        {
            "dead_letter": item.outgoing.source.position,
            "reason": dead_letter_headers(item.outgoing.source).get("reason"),
            "topic": item.outgoing.topic,
            "partition": item.partition,
            "offset": item.offset,
        }
        for item in delivered
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"redriven {row['dead_letter']} ({row['reason']}) -> "
            f"{row['topic']}[{row['partition']}]@{row['offset']}"
        )
    typer.echo(f"{len(rows)} dead letter(s) redriven")


def _original(record: TopicRecord) -> str:
    return dead_letter_headers(record).get("original_topic") or record.topic.removesuffix(".dlq")
