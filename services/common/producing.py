"""Producing one message when librdkafka's local queue may be full.

`Producer.produce` raises BufferError when the local queue is full; the way out is to serve
delivery reports (`poll`) until there is room, then try again. The services, the CLI, the tests
and the benchmarks' pre-fills do that through `produce_waiting` (the benchmark's bare baseline
loop keeps its own, being the baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


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
