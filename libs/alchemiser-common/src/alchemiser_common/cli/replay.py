"""``alchemiser replay``: re-produce a range of a topic's records onto the same topic.

The records are copied byte for byte (value, key, headers; a ``replay.source`` header names the
original ``<topic>:<partition>:<offset>``) to the same partition, in offset order, by an
idempotent producer. The effects stay exactly-once because every consumer deduplicates: a
replayed event whose event type and workflow were already handled, with the same content, is a
duplicate (its stored outputs are re-emitted, nothing if already published, and downstream
consumers recognise those by their event ids); a record dead-lettered at its old offset is
processed afresh at its new one, like a redriven dead letter.

``--from`` and ``--to`` are offsets of one partition (``--to`` inclusive, default the last
record when the command starts). With ``--partition`` (or a one-partition topic) an offset
outside the partition's records is an error; without it the range applies to every partition
and is clipped to what each holds.

Exit codes: 0 done, 1 declined or not delivered, 2 an operator error in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from alchemiser_common.cli.inspect import (
    DEFAULT_TIMEOUT_S,
    Delivered,
    OperatorError,
    Outgoing,
    PartitionRange,
    TopicReader,
    TopicRecord,
    operator_errors,
    print_json,
    reproduce,
    target,
)

__all__ = ["REPLAY_SOURCE_HEADER", "app", "command", "partition_ranges"]

REPLAY_SOURCE_HEADER = "replay.source"
"""Header of a replayed record: the record it copies, ``<topic>:<partition>:<offset>``."""

app = typer.Typer(add_completion=False, help="Re-produce a range of a topic's records.")


def partition_ranges(
    topic: str,
    watermarks: dict[int, tuple[int, int]],
    first: int,
    last: int | None,
    *,
    strict: bool,
) -> list[PartitionRange]:
    """The ranges to replay: ``first..last`` (inclusive) of each partition in ``watermarks``.

    ``strict`` (one partition named): offsets outside the partition's records are an
    :class:`OperatorError`; otherwise each partition's range is clipped and empty ones dropped.
    """
    if last is not None and last < first:
        raise OperatorError(f"--to {last} is before --from {first}")
    ranges: list[PartitionRange] = []
    for partition, (low, high) in sorted(watermarks.items()):
        where = f"{topic}[{partition}]"
        if strict:
            if high <= low:
                raise OperatorError(f"{where} holds no records")
            held = f"its records are offsets {low}..{high - 1}"
            if first < low:
                raise OperatorError(f"--from {first} is no longer in {where}: {held}")
            if first >= high:
                raise OperatorError(f"--from {first} is past the end of {where}: {held}")
            if last is not None and last >= high:
                raise OperatorError(f"--to {last} is past the end of {where}: {held}")
        start = max(first, low)
        end = min(high, last + 1) if last is not None else high
        if end > start:
            ranges.append(PartitionRange(topic, partition, start, end))
    if not ranges:
        upto = f"..{last}" if last is not None else " onwards"
        raise OperatorError(f"no record of {topic} at offsets {first}{upto}")
    return ranges


def _copy(record: TopicRecord) -> Outgoing:
    kept = tuple((name, data) for name, data in record.headers if name != REPLAY_SOURCE_HEADER)
    mark = (REPLAY_SOURCE_HEADER, f"{record.topic}:{record.partition}:{record.offset}".encode())
    return Outgoing(
        topic=record.topic,
        partition=record.partition,
        key=record.key,
        value=record.value,
        headers=(*kept, mark),
        source=record,
    )


def _offsets(records: Sequence[TopicRecord]) -> dict[int, list[int]]:
    by_partition: dict[int, list[int]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record.offset)
    return by_partition


def _summary(delivered: Sequence[Delivered]) -> list[dict[str, Any]]:
    by_partition: dict[int, list[Delivered]] = {}
    for item in delivered:
        by_partition.setdefault(item.outgoing.source.partition, []).append(item)
    return [
        {
            "partition": partition,
            "records": len(items),
            "from": min(item.outgoing.source.offset for item in items),
            "to": max(item.outgoing.source.offset for item in items),
            "new_from": min(item.offset for item in items),
            "new_to": max(item.offset for item in items),
        }
        for partition, items in sorted(by_partition.items())
    ]


@app.command()
def replay(  # noqa: PLR0917 - Typer maps each parameter to one option
    topic: Annotated[str, typer.Option("--topic", "-t", help="The topic to replay.")],
    first: Annotated[int, typer.Option("--from", min=0, help="First offset to replay.")],
    last: Annotated[
        int | None,
        typer.Option("--to", min=0, help="Last offset to replay, inclusive (default: the end)."),
    ] = None,
    partition: Annotated[
        int | None,
        typer.Option("--partition", "-p", min=0, help="One partition (default: every one)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", "-b", help="Kafka host:port list (default: settings)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds the broker gets to answer.")
    ] = DEFAULT_TIMEOUT_S,
) -> None:
    """Re-produce records --from..--to of a topic onto the same topic (consumers dedupe them)."""
    with operator_errors():
        where = target(bootstrap_servers, None, timeout)
        with TopicReader(where) as reader:
            partitions = reader.partitions([topic])[topic]
            if partition is not None and partition not in partitions:
                raise OperatorError(
                    f"{topic} has partitions 0..{max(partitions)}; there is no partition "
                    f"{partition}"
                )
            chosen = [partition] if partition is not None else partitions
            marks = {part: reader.watermarks(topic, part) for part in chosen}
            ranges = partition_ranges(topic, marks, first, last, strict=len(chosen) == 1)
            records = reader.read(ranges, f"reading {topic}")
        if not records:
            raise OperatorError(f"no record of {topic} in the range (transaction markers only)")
        spans = ", ".join(
            f"[{part}] {min(offsets)}..{max(offsets)}"
            for part, offsets in sorted(_offsets(records).items())
        )
        if not yes and not typer.confirm(
            f"Re-produce {len(records)} record(s) of {topic} {spans} onto {topic} at "
            f"{where.bootstrap_servers}? (consumers skip events they already handled)",
            err=True,
        ):
            typer.echo("nothing replayed", err=True)
            raise typer.Exit(1)
        delivered = reproduce(where, [_copy(record) for record in records], f"replaying {topic}")
    parts = _summary(delivered)
    if as_json:
        print_json({"topic": topic, "records": len(delivered), "partitions": parts})
        return
    for part in parts:
        typer.echo(
            f"replayed {topic}[{part['partition']}] offsets {part['from']}..{part['to']} "
            f"({part['records']} record(s)) as offsets {part['new_from']}..{part['new_to']}"
        )
    typer.echo(f"{len(delivered)} record(s) replayed")


command = typer.main.get_command(app)
"""The ``replay`` command itself (one command, not a group): what ``alchemiser replay`` loads."""
