"""The standard metrics every service exports, defined once, on a registry passed in.

Label sets are bounded: topics, categories and reasons come from closed sets, never from events.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


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


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> int:
    """Serve `/metrics` on host:port (0 = off); returns the port or 0."""
    if port <= 0:
        return 0
    start_http_server(port, addr=host, registry=registry)
    return port
