"""The drift service's own Prometheus series, on a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class DriftMetrics:
    """Drift-specific series (no per-deployment labels: bounded cardinality)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.windows = Counter(
            "streamops_drift_windows_closed_total", "Windows closed.", registry=registry
        )
        self.breaches = Counter(
            "streamops_drift_breaches_total",
            "Breach transitions.",
            ["kind", "status"],
            registry=registry,
        )
        self.late = Counter(
            "streamops_drift_late_total",
            "Records after their window closed.",
            ["record"],
            registry=registry,
        )
        self.unmonitored = Counter(
            "streamops_drift_unmonitored_total",
            "Records of deployments without a known champion baseline.",
            registry=registry,
        )
        self.recoveries = Counter(
            "streamops_drift_recoveries_total",
            "State reloads and seeks after a Redis failure.",
            registry=registry,
        )
