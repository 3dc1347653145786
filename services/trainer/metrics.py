"""The trainer's own Prometheus series: trainings by outcome, retries, training time, size."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

OUTCOMES = ("published", "rejected", "refused", "coalesced", "failed")
SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
BYTES_BUCKETS = tuple(2**k for k in range(12, 26))  # 4 KiB .. 32 MiB


class TrainerMetrics:
    """`streamops_trainer_*` series on a registry passed in; outcome is a closed set."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.trainings = Counter(
            "streamops_trainer_trainings_total",
            "Training requests by outcome (published, rejected by the gate, refused, ...).",
            ["outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "streamops_trainer_retrain_retries_total",
            "Retrains tried again after a transient failure (broker or Redis away).",
            registry=registry,
        )
        self.seconds = Histogram(
            "streamops_trainer_training_seconds",
            "Wall time of one training: data read, search, export, parity and baseline.",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.model_bytes = Histogram(
            "streamops_trainer_model_bytes",
            "Size of each published ModelPublished record.",
            buckets=BYTES_BUCKETS,
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.trainings.labels(outcome)

    def outcome(self, outcome: str) -> None:
        """Count one training outcome."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.trainings.labels(outcome).inc()
