"""The standard metrics every service exports, defined once, on a registry passed in.

Label sets are bounded: topics, categories and reasons come from closed sets, never from events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# librdkafka's OFFSET_INVALID (-1001) and friends are all negative: "not known yet".
UNKNOWN_OFFSET = 0


class StandardMetrics:
    """`streamops_*` counters and histograms shared by every service."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.consumed = Counter(
            "streamops_messages_consumed_total",
            "Messages consumed, by topic.",
            ["service", "topic"],
            registry=registry,
        )
        self.produced = Counter(
            "streamops_messages_produced_total",
            "Messages delivered, by topic.",
            ["service", "topic"],
            registry=registry,
        )
        self.processing = Histogram(
            "streamops_processing_seconds",
            "Time to handle one micro-batch, decode to delivered outputs.",
            ["service"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "streamops_batch_size",
            "Messages per micro-batch.",
            ["service"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "streamops_errors_total",
            "Errors, by category (a bounded set).",
            ["service", "category"],
            registry=registry,
        )
        self.deadletter = Counter(
            "streamops_deadletter_total",
            "Messages sent to the dead-letter topic, by source topic and reason.",
            ["service", "topic", "reason"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "streamops_consumer_lag",
            "Messages between the consumer's position and the high watermark, per assigned "
            "partition (from cached watermarks, refreshed at most once a second).",
            ["service", "topic", "partition"],
            registry=registry,
        )


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> int:
    """Serve `/metrics` on host:port (0 = off); returns the port or 0."""
    if port <= 0:
        return 0
    start_http_server(port, addr=host, registry=registry)
    return port


class LagSource(Protocol):
    """The consumer calls the lag needs; all answer from local state, no broker round trip."""

    def assignment(self) -> list[Any]: ...

    def position(self, partitions: list[Any]) -> list[Any]: ...

    def get_watermark_offsets(
        self, partition: Any, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int] | None: ...


class ConsumerLag:
    """Keeps `streamops_consumer_lag` to the assigned partitions: high watermark minus position."""

    def __init__(
        self,
        gauge: Gauge,
        service: str,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gauge, self.service, self.interval_s, self.clock = gauge, service, interval_s, clock
        self._shown: set[tuple[str, int]] = set()
        self._last = float("-inf")
        self._warned = False

    def maybe_update(self, consumer: LagSource) -> bool:
        """Update if `interval_s` has passed since the last update; True if it did."""
        now = self.clock()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        try:
            self.update(consumer)
        except Exception as exc:  # a metric must never stop the consume loop
            if not self._warned:
                log.warning("consumer lag not measured: %r", exc)
                self._warned = True
        return True

    def update(self, consumer: LagSource) -> None:
        """Set one series per assigned partition whose offsets are known; drop the others."""
        assigned = consumer.assignment()
        known: set[tuple[str, int]] = set()
        for tp in consumer.position(assigned) if assigned else []:
            marks = consumer.get_watermark_offsets(tp, cached=True)
            if marks is None or marks[1] < UNKNOWN_OFFSET:
                continue
            low, high = marks
            if tp.offset >= UNKNOWN_OFFSET:
                lag = max(0, high - tp.offset)
            elif low == high:  # empty partition: nothing to read, whatever the position
                lag = 0
            else:  # nothing consumed since assignment: behind by an unknown amount
                continue
            known.add((tp.topic, tp.partition))
            self.gauge.labels(self.service, tp.topic, str(tp.partition)).set(lag)
        self.forget(self._shown - {(tp.topic, tp.partition) for tp in assigned})
        self._shown |= known

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Remove the series of partitions this consumer no longer owns (revoked or lost)."""
        for topic, partition in list(partitions):
            if (topic, partition) in self._shown:
                self._shown.discard((topic, partition))
                self.gauge.remove(self.service, topic, str(partition))
