"""Every topic name and its configuration, spelled once.

>>> TopicNamer("streamops.").events
'streamops.events'
>>> TopicNamer("test-1.").record_for("test-1.actuals")
'Actual'
"""

from __future__ import annotations

import dataclasses

MIB = 1024 * 1024
DAY_MS = 24 * 3600 * 1000
MAX_MODEL_MESSAGE_BYTES = 32 * MIB


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """How one logical topic is created: partitions, record type, and broker-side config."""

    logical: str
    record: str
    partitions: int
    config: dict[str, str]
    # People (or services not written in Python) may write plain JSON objects onto this topic;
    # its readers decode them through services/common/json_input.py.
    json_input: bool = False


def _retained(days: int, max_bytes: int = MIB) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(days * DAY_MS),
        "max.message.bytes": str(max_bytes),
    }


_COMPACTED_LARGE = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(MAX_MODEL_MESSAGE_BYTES),
    "min.compaction.lag.ms": "60000",
    "segment.bytes": str(256 * MIB),
}

TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("events", "FeatureEvent", 6, _retained(7), json_input=True),
    # JSON: predictions an external deployment's own service reports (the scorer writes Avro).
    TopicSpec("predictions", "Prediction", 6, _retained(7), json_input=True),
    TopicSpec("actuals", "Actual", 6, _retained(30), json_input=True),
    TopicSpec("models", "ModelPublished", 1, dict(_COMPACTED_LARGE)),
    TopicSpec("deployments", "Deployment", 1, {**_COMPACTED_LARGE, "max.message.bytes": str(MIB)}),
    TopicSpec("drift", "DriftReport", 3, _retained(90)),
    TopicSpec("breaches", "ThresholdBreach", 3, _retained(90)),
    TopicSpec("retrain", "RetrainRequest", 1, _retained(30)),
    # What became of each retrain request (published, rejected, refused, failed).
    TopicSpec("retrain_outcomes", "RetrainOutcome", 1, _retained(30)),
    # The audit log is never deleted by age: governance history must outlive every model.
    TopicSpec("governance", "GovernanceEvent", 1, {**_retained(1), "retention.ms": "-1"}),
    TopicSpec("deadletter", "DeadLetter", 3, _retained(30, max_bytes=MAX_MODEL_MESSAGE_BYTES)),
    TopicSpec("review", "FeatureEvent", 3, _retained(30)),
)

_BY_LOGICAL = {spec.logical: spec for spec in TOPIC_SPECS}


class TopicNamer:
    """Resolves logical topic names to physical ones under a configurable prefix."""

    def __init__(self, prefix: str = "streamops.") -> None:
        self.prefix = prefix

    def __getattr__(self, logical: str) -> str:
        if logical in _BY_LOGICAL:
            return self.prefix + logical
        raise AttributeError(f"no topic named {logical!r}; known: {', '.join(_BY_LOGICAL)}")

    def name(self, logical: str) -> str:
        """The physical name of a logical topic."""
        return getattr(self, logical)

    def spec(self, physical_or_logical: str) -> TopicSpec:
        """The spec of a topic given either its physical or logical name."""
        logical = physical_or_logical.removeprefix(self.prefix)
        try:
            return _BY_LOGICAL[logical]
        except KeyError:
            raise KeyError(
                f"{physical_or_logical!r} is not a streamops topic under prefix {self.prefix!r}; "
                f"known: {', '.join(_BY_LOGICAL)}"
            ) from None

    def record_for(self, physical: str) -> str:
        """The Avro record carried by a topic."""
        return self.spec(physical).record

    def all(self) -> list[tuple[str, TopicSpec]]:
        """Every (physical name, spec) pair."""
        return [(self.prefix + spec.logical, spec) for spec in TOPIC_SPECS]
