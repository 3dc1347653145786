"""The alerting service's own metrics (labels: receivers from the config file, closed sets)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)
CIRCUIT_VALUES = {"closed": 0.0, "half_open": 0.5, "open": 1.0}


class AlertingMetrics:
    """Notifications by receiver, delivery latency, outbox depth, circuits, breaches, retrains."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "streamops_alerting_notifications_total",
            "Notifications finished, by receiver and result (delivered, dead_lettered).",
            ["receiver", "result"],
            registry=registry,
        )
        self.attempts = Counter(
            "streamops_alerting_delivery_attempts_total",
            "Delivery attempts, by receiver and outcome.",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "streamops_alerting_delivery_latency_seconds",
            "From a notification being queued to its receiver accepting it.",
            ["receiver"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "streamops_alerting_outbox_depth",
            "Notifications waiting in the outbox.",
            registry=registry,
        )
        self.circuit = Gauge(
            "streamops_alerting_circuit_state",
            "Circuit per receiver: 0 closed, 0.5 half-open, 1 open.",
            ["receiver"],
            registry=registry,
        )
        self.breaches = Counter(
            "streamops_alerting_breaches_total",
            "Breaches consumed, by status.",
            ["status"],
            registry=registry,
        )
        self.retrain_requests = Counter(
            "streamops_alerting_retrain_requests_total",
            "Retrain requests produced.",
            registry=registry,
        )
        self.retrain_outcomes = Counter(
            "streamops_alerting_retrain_outcomes_total",
            "Retrain outcomes consumed, by outcome (published, rejected, refused, failed).",
            ["outcome"],
            registry=registry,
        )
