"""The per-batch state of the commit protocol: created for one batch, dropped after its commit.

A :class:`Checkpoint` holds the batch's decoded inputs and, as the loop works through them,
what each one produces: the inbox entries to record, the outputs to produce in input order, the
inbox keys to mark published and the metrics to count once the Kafka transaction committed
(a :class:`~alchemiser_common.runtime.tally.MetricsTally`).
Not every input need be processed: the loop stops early on shutdown or when the batch's time
budget is spent, and a transient failure stops the rest of *that input's partition*. In each
partition the processed inputs are a prefix; the offsets the checkpoint commits are those of
these prefixes, so the rest is consumed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from alchemiser_common.inbox import InboxEntry, StoredOutput
from alchemiser_common.runtime.inputs import Input
from alchemiser_common.runtime.tally import MetricsTally

__all__ = ["Checkpoint"]


@dataclass(slots=True)
class Checkpoint:
    """One batch's inputs, claims, outputs and offsets (see the module docstring)."""

    inputs: Sequence[Input]
    processed: set[int] = field(default_factory=set)
    """The indices of the inputs this checkpoint commits (a prefix of each partition)."""
    outputs: dict[int, list[StoredOutput]] = field(default_factory=dict)
    """Outputs by input index; produced in index order."""
    entries: dict[int, InboxEntry] = field(default_factory=dict)
    """What to record in the inbox, by input index: handled inputs and dead letters."""
    published_keys: list[str] = field(default_factory=list)
    """Inbox keys whose outputs this checkpoint produces (marked published after commit)."""
    tally: MetricsTally = field(default_factory=MetricsTally)
    """Metric updates that count only once the Kafka transaction committed."""

    def emit(self, index: int, outputs: Sequence[StoredOutput]) -> None:
        """Produce ``outputs`` for input ``index`` (replacing anything set before)."""
        self.outputs[index] = list(outputs)

    def ordered_outputs(self) -> list[StoredOutput]:
        """Every output of the processed inputs, in input order."""
        return [
            output for index in sorted(self.processed) for output in self.outputs.get(index, ())
        ]

    @property
    def complete(self) -> bool:
        """Whether every input of the batch is processed."""
        return len(self.processed) == len(self.inputs)

    def offsets(self) -> list[TopicPartition]:
        """Per partition, the offset after the last processed input (what the group commits)."""
        positions: dict[tuple[str, int], int] = {}
        for item in (self.inputs[index] for index in self.processed):
            key = (item.topic, item.partition)
            positions[key] = max(positions.get(key, -1), item.offset + 1)
        return [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in sorted(positions.items())
        ]
