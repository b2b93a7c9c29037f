"""``alchemiser workflow list`` and ``workflow show``: workflows as the topics tell them.

Both read the topics from their beginning up to the high watermarks seen when the command
starts (no consumer group, nothing committed; see :mod:`alchemiser_common.cli.inspect`).

* **list** reads ``workflow.started.v1`` and the two outcome topics: one row per workflow id
  with its account, session (``as_of``, else the trigger's date in New York), who requested
  it, its outcome (``completed``, ``failed`` with the step and reason, or ``running``) and its
  duration, newest first.
* **show** reads the six event topics and their dead-letter twins for one workflow id: every
  record of the workflow ordered by when it happened, with its type, ids, source, position
  and the delay from the event that caused it (the previous row when the cause is not found),
  and a short summary. A record seen again with an event id already shown (a redelivery, a
  replay) is marked as a duplicate.

**Times.** An event's time is its ``occurred_at``, except a *session* trigger's: its
``occurred_at`` is the session's midnight by design (so a retried trigger is the same event),
so the time it was sent, its record's timestamp, is used instead. A dead letter's time is its
``dlq.failed_at`` header. A workflow's duration is its outcome's ``occurred_at`` minus its
trigger's time (the first trigger record's, when it was sent more than once).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from alchemiser_common.cli.inspect import (
    Decoded,
    Decoder,
    OperatorError,
    Target,
    TopicReader,
    TopicRecord,
    dead_letter_headers,
    dead_letter_summary,
    format_delay,
    format_time,
    operator_errors,
    print_json,
    short_id,
    summarize,
)
from alchemiser_common.events import WorkflowCompleted, WorkflowFailed, WorkflowStarted
from alchemiser_common.topics import DLQ_TOPICS, EVENT_TOPICS, is_dlq_topic
from alchemiser_common.workflow import session_date, session_start

__all__ = ["WorkflowRow", "list_workflows", "show_workflow", "trigger_time"]

_OUTCOME_TOPICS = (WorkflowStarted.TOPIC, WorkflowCompleted.TOPIC, WorkflowFailed.TOPIC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_WIDE = 120  # columns from which whole workflow ids fit beside the rest
_SHORT_IDS = "ids shortened: --json or a wider terminal shows them whole; `show` takes a prefix"
_ID_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]{3,35}")
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def trigger_time(started: WorkflowStarted, record: TopicRecord) -> datetime:
    """When the trigger was sent: a session trigger's record timestamp, else ``occurred_at``."""
    session = session_date(started.as_of, started.occurred_at)
    if started.occurred_at == session_start(session) and record.timestamp is not None:
        return record.timestamp
    return started.occurred_at


@dataclass
class WorkflowRow:
    """One workflow as ``workflow list`` shows it."""

    workflow_id: str
    account_id: str | None = None
    session: date | None = None
    requested_by: str | None = None
    mode: str | None = None
    started_at: datetime | None = None
    outcome: WorkflowCompleted | WorkflowFailed | None = None

    @property
    def status(self) -> str:
        """``completed``, ``failed`` or ``running``."""
        if isinstance(self.outcome, WorkflowCompleted):
            return "completed"
        if isinstance(self.outcome, WorkflowFailed):
            return "failed"
        return "running"

    @property
    def reason(self) -> str | None:
        """A failed workflow's ``step: reason``."""
        if isinstance(self.outcome, WorkflowFailed):
            return f"{self.outcome.failure_step.value}: {self.outcome.reason}"
        return None

    @property
    def duration_s(self) -> float | None:
        """Outcome ``occurred_at`` minus the trigger's time (``None`` while running)."""
        if self.outcome is None or self.started_at is None:
            return None
        seconds = (self.outcome.occurred_at - self.started_at).total_seconds()
        return seconds if seconds >= 0 else None

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object."""
        return {
            "workflow_id": self.workflow_id,
            "account_id": self.account_id,
            "session": self.session.isoformat() if self.session else None,
            "requested_by": self.requested_by,
            "mode": self.mode,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "outcome": self.status,
            "reason": self.reason,
            "ended_at": self.outcome.occurred_at.isoformat() if self.outcome else None,
            "duration_s": self.duration_s,
        }


def collect_workflows(decoded: Sequence[Decoded]) -> list[WorkflowRow]:
    """Rows from the trigger and outcome records, newest first (the first trigger and the first
    outcome of a workflow count; later copies are redeliveries or repeats)."""
    rows: dict[str, WorkflowRow] = {}
    for item in sorted(decoded, key=lambda d: d.record.timestamp or _LATEST):
        event = item.event
        if event is None:
            continue
        row = rows.setdefault(str(event.correlation_id), WorkflowRow(str(event.correlation_id)))
        if isinstance(event, WorkflowStarted) and row.started_at is None:
            row.account_id = event.account_id
            row.requested_by = event.requested_by
            row.mode = event.mode.value
            row.session = session_date(event.as_of, event.occurred_at)
            row.started_at = trigger_time(event, item.record)
        elif isinstance(event, WorkflowCompleted | WorkflowFailed) and row.outcome is None:
            row.outcome = event
            row.account_id = row.account_id or event.account_id
    return sorted(
        rows.values(),
        key=lambda row: (
            row.started_at or (row.outcome.occurred_at if row.outcome else _EARLIEST),
            row.workflow_id,
        ),
        reverse=True,
    )


def list_workflows(target: Target, *, limit: int, account: str | None, as_json: bool) -> None:
    """Print the newest ``limit`` workflows (of ``account``) as a table or a JSON array."""
    with operator_errors():
        with TopicReader(target) as reader:
            records = reader.read(reader.whole(_OUTCOME_TOPICS), "reading workflows")
        decoder = Decoder(target)
        decoded = [decoder.decode(record) for record in records]
    rows = [
        row for row in collect_workflows(decoded) if account is None or row.account_id == account
    ][:limit]
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    console = Console()
    if not rows:
        console.print(f"no workflows at {target.bootstrap_servers}", soft_wrap=True)
        return
    whole_ids = console.width >= _WIDE
    table = Table(
        title=f"Workflows at {target.bootstrap_servers} (newest first)",
        box=None,
        collapse_padding=True,
        pad_edge=False,
        caption=None if whole_ids else _SHORT_IDS,
    )
    table.add_column("workflow", no_wrap=True)
    table.add_column("account", overflow="fold")
    table.add_column("session", no_wrap=True)
    table.add_column("by", overflow="fold", ratio=1)
    table.add_column("outcome", overflow="fold", ratio=2)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("started UTC", no_wrap=True)
    for row in rows:
        outcome = row.status if row.reason is None else f"failed: {row.reason}"
        table.add_row(
            row.workflow_id if whole_ids else short_id(row.workflow_id),
            row.account_id or "?",
            row.session.isoformat() if row.session else "?",
            row.requested_by or "?",
            outcome,
            format_delay(row.duration_s).lstrip("+") if row.duration_s is not None else "-",
            format_time(row.started_at)[5:-4] if row.started_at else "-",
        )
    console.print(table)


@dataclass
class ChainEntry:
    """One record of a workflow, placed in time."""

    decoded: Decoded
    at: datetime | None
    dead: bool
    duplicate_of: str | None = None
    delay_s: float | None = None

    @property
    def record(self) -> TopicRecord:
        """The record."""
        return self.decoded.record

    @property
    def summary(self) -> str:
        """What the record says, in one line."""
        if self.dead:
            text = dead_letter_summary(self.record)
        elif self.decoded.event is not None:
            text = summarize(self.decoded.event)
        else:
            text = f"undecodable: {self.decoded.error}"
        if self.duplicate_of:
            text = f"duplicate of {self.duplicate_of}: {text}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the record's description plus time, delay, summary)."""
        document = self.decoded.to_json()
        document.update(
            {
                "at": self.at.isoformat() if self.at else None,
                "delay_s": self.delay_s,
                "dead_letter": dead_letter_headers(self.record) if self.dead else None,
                "duplicate_of": self.duplicate_of,
                "source": _source(self.decoded),
                "summary": self.summary,
            }
        )
        return document


def _source(decoded: Decoded) -> str | None:
    if decoded.event is None:
        return None
    return f"{decoded.event.source.service} {decoded.event.source.version}"


def _when(decoded: Decoded, dead: bool) -> datetime | None:
    record = decoded.record
    if dead:
        failed_at = record.header("dlq.failed_at")
        if failed_at:
            try:
                return datetime.fromisoformat(failed_at)
            except ValueError:
                pass
        return record.timestamp
    event = decoded.event
    if isinstance(event, WorkflowStarted):
        return trigger_time(event, record)
    return event.occurred_at if event is not None else record.timestamp


def build_chain(decoded: Sequence[Decoded]) -> list[ChainEntry]:
    """The workflow's records in time order, with duplicates marked and delays computed."""
    topic_rank = {topic: rank for rank, topic in enumerate(EVENT_TOPICS + DLQ_TOPICS)}
    entries = [
        ChainEntry(
            item, _when(item, is_dlq_topic(item.record.topic)), is_dlq_topic(item.record.topic)
        )
        for item in decoded
    ]
    entries.sort(
        key=lambda entry: (
            entry.at or _LATEST,
            topic_rank.get(entry.record.topic, len(topic_rank)),
            entry.record.partition,
            entry.record.offset,
        )
    )
    first_by_id: dict[str, ChainEntry] = {}
    previous: ChainEntry | None = None
    for entry in entries:
        event = entry.decoded.event
        if not entry.dead and event is not None:
            seen = first_by_id.get(str(event.event_id))
            if seen is not None:
                entry.duplicate_of = seen.record.position
            else:
                first_by_id[str(event.event_id)] = entry
        cause = None
        if event is not None and event.causation_id is not None and not entry.dead:
            cause = first_by_id.get(str(event.causation_id))
        origin = cause or previous
        if origin is not None and origin.at is not None and entry.at is not None:
            entry.delay_s = (entry.at - origin.at).total_seconds()
        previous = entry
    return entries


class _Finder:
    """Decodes each record at most once and finds a workflow's records (by id or id prefix)."""

    def __init__(self, records: Sequence[TopicRecord], decoder: Decoder) -> None:
        self._records = records
        self._decoder = decoder
        self._decoded: dict[int, Decoded] = {}

    def _decode(self, index: int) -> Decoded:
        if index not in self._decoded:
            self._decoded[index] = self._decoder.decode(self._records[index])
        return self._decoded[index]

    def _workflow_of(self, index: int) -> str | None:
        header = self._records[index].header("correlation_id")
        return header if header is not None else self._decode(index).correlation_id

    def resolve(self, prefix: str) -> str | None:
        """The one workflow id starting with ``prefix`` (``OperatorError`` if several)."""
        ids = sorted(
            {
                workflow
                for index in range(len(self._records))
                if (workflow := self._workflow_of(index)) and workflow.startswith(prefix)
            }
        )
        if len(ids) > 1:
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            raise OperatorError(f"{prefix!r} starts {len(ids)} workflow ids ({shown}): say more")
        return ids[0] if ids else None

    def records_of(self, workflow_id: str) -> list[Decoded]:
        """Every record of ``workflow_id`` (the header decides when present)."""
        found: list[Decoded] = []
        for index, record in enumerate(self._records):
            header = record.header("correlation_id")
            if header is not None and header != workflow_id:
                continue
            decoded = self._decode(index)
            if decoded.correlation_id == workflow_id:
                found.append(decoded)
        return found


def _parse_id(workflow_id: str) -> tuple[str | None, str]:
    """``(whole id, prefix)``: a UUID, or the first characters of one."""
    try:
        whole = str(uuid.UUID(workflow_id))
    except ValueError:
        prefix = workflow_id.strip().lower()
        if not _ID_PREFIX.fullmatch(prefix):
            raise OperatorError(
                f"{workflow_id!r} is not a workflow id (a UUID, or at least its first 4 characters)"
            ) from None
        return None, prefix
    return whole, whole


def show_workflow(target: Target, workflow_id: str, *, as_json: bool) -> None:
    """Print every record of ``workflow_id`` (a UUID or a unique prefix of one) as a table or
    JSON; exit 1 when there is none."""
    with operator_errors():
        wanted, prefix = _parse_id(workflow_id)
        with TopicReader(target) as reader:
            records = reader.read(
                reader.whole(EVENT_TOPICS + DLQ_TOPICS), f"reading workflow {short_id(prefix)}"
            )
        finder = _Finder(records, Decoder(target))
        if wanted is None:
            wanted = finder.resolve(prefix)
        found = finder.records_of(wanted) if wanted is not None else []
    chain = build_chain(found)
    if as_json:
        print_json(
            {"workflow_id": wanted or prefix, "records": [entry.to_json() for entry in chain]}
        )
        if not chain:
            raise typer.Exit(1)
        return
    if wanted is None or not chain:
        typer.echo(
            f"no record of workflow {wanted or prefix} on the {len(EVENT_TOPICS + DLQ_TOPICS)} "
            f"workflow and dead-letter topics at {target.bootstrap_servers}",
            err=True,
        )
        raise typer.Exit(1)
    _print_chain(wanted, chain)


def _print_chain(workflow_id: str, chain: Sequence[ChainEntry]) -> None:
    console = Console()
    rows = collect_workflows([entry.decoded for entry in chain if not entry.dead])
    head = rows[0] if rows else WorkflowRow(workflow_id)
    outcome = head.status
    if head.duration_s is not None:
        outcome += f" after {format_delay(head.duration_s).lstrip('+')}"
    if head.reason is not None:
        outcome += f" ({head.reason})"
    first = next((entry.at for entry in chain if entry.at is not None), None)
    console.print(
        f"workflow {workflow_id}: account {head.account_id or '?'}, session "
        f"{head.session.isoformat() if head.session else '?'}, {outcome}; "
        f"first record {format_time(first)} UTC"
    )
    if console.width >= _WIDE:
        _chain_table(console, chain)
    else:
        _chain_lines(console, chain)
    dead = sum(1 for entry in chain if entry.dead)
    duplicates = sum(1 for entry in chain if entry.duplicate_of)
    console.print(f"{len(chain)} record(s): {dead} dead letter(s), {duplicates} duplicate(s)")


def _style(entry: ChainEntry) -> str:
    return "dim" if entry.duplicate_of else ("red" if entry.dead else "")


def _kind(entry: ChainEntry) -> str:
    kind = entry.decoded.event_type
    if not entry.dead:
        return kind
    return "dead letter" if kind == "?" else f"{kind} (dead)"


def _fields(entry: ChainEntry) -> tuple[str, str, str, str, str, str, str]:
    event = entry.decoded.event
    return (
        format_time(entry.at)[11:] if entry.at else "-",
        format_delay(entry.delay_s),
        _kind(entry),
        f"{entry.record.partition}@{entry.record.offset}",
        short_id(entry.decoded.event_id),
        short_id(event.causation_id if event is not None else None),
        event.source.service if event is not None else "-",
    )


def _chain_table(console: Console, chain: Sequence[ChainEntry]) -> None:
    """One row per record (a wide terminal)."""
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        caption="ids shortened to 8 characters; --json shows them whole, with the topics",
    )
    for name in ("at (UTC)", "delay", "event", "p@offset", "event id", "cause", "source"):
        table.add_column(name, no_wrap=True, justify="right" if name == "delay" else "left")
    table.add_column("summary", overflow="fold", ratio=1)
    for entry in chain:
        table.add_row(*_fields(entry), entry.summary, style=_style(entry) or None)
    console.print(table)


def _chain_lines(console: Console, chain: Sequence[ChainEntry]) -> None:
    """Two lines per record, the summary indented under its fields (a narrow terminal)."""
    for entry in chain:
        at, delay, kind, position, event_id, cause, source = _fields(entry)
        head = Text(f"{at} {delay:>8} ", style=_style(entry))
        head.append(f"{kind:<17}", style="bold")
        head.append(f" {position:>6} {event_id:<8} <- {cause:<8} {source}")
        console.print(head)
        console.print(Padding(Text(entry.summary, style=_style(entry)), (0, 0, 0, 4)))
    console.print("ids shortened to 8 characters (event <- cause); --json shows them whole")
