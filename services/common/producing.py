"""Producing one message when librdkafka's local queue may be full.

`Producer.produce` raises BufferError when the local queue is full; the way out is to serve
delivery reports (`poll`) until there is room, then try again. The services, the CLI, the tests
and the benchmarks' pre-fills do that through `produce_waiting` (the benchmark's bare baseline
loop keeps its own, being the baseline).

A delivery report that is an error does not always mean "not written": a request that timed out
may have reached the log. `delivery_outcome` tells the two apart, so that such a message is
reported as unknown and checked, never counted as failed and blindly resent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError

# Errors after which the message may or may not be in the log.
_MAYBE_WRITTEN = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._PURGE_INFLIGHT,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)


def delivery_outcome(err: KafkaError | None) -> str:
    """Classify a delivery report: acked, unknown (may be written: check first) or failed."""
    if err is None:
        return "acked"
    return "unknown" if err.code() in _MAYBE_WRITTEN else "failed"


def produce_waiting(
    producer: Any,
    topic: str,
    value: bytes | None,
    key: bytes | str | None = None,
    *,
    headers: Sequence[tuple[str, bytes]] | None = None,
    on_delivery: Callable[[Any, Any], None] | None = None,
    wait_s: float = 0.05,
) -> None:
    """`producer.produce`; while the local queue is full, serve delivery reports for `wait_s`."""
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(wait_s)
