"""The runtime's time bounds, one constant per meaning, each with its reason.

Kept in a module of its own (no Kafka import) so that services' settings can check their
own waits against them at start-up.
"""

from __future__ import annotations

__all__ = ["KAFKA_CALL_STALL_S", "KAFKA_MAX_POLL_INTERVAL_S", "MAX_BATCH_HANDLING_S"]

#: librdkafka's default ``max.poll.interval.ms`` (5 min): a consumer that does not poll for
#: longer leaves its group and its partitions are handed to another member.
KAFKA_MAX_POLL_INTERVAL_S = 300.0

#: A batch takes no new input after its handlers ran this long; the rest is consumed again by
#: the next poll. Keeps the time between polls far below :data:`KAFKA_MAX_POLL_INTERVAL_S`
#: however large the batch, and bounds how long a stop request waits for the batch.
MAX_BATCH_HANDLING_S = 10.0

#: A blocking Kafka call is given ``API_TIMEOUT_S`` (30 s, the Kafka wrapper's bound); one
#: still running after this long is stuck (seen after broker restarts): the liveness probe
#: fails so that Kubernetes restarts the process.
KAFKA_CALL_STALL_S = 45.0
