"""Publishing the drift service's outputs: reports, breaches and dead letters, delivered or fatal.

Takes any producer with confluent-kafka's ``produce`` / ``poll`` / ``flush`` (it never imports
a Kafka client itself). ``flush`` waits for every delivery report; an undelivered output is
fatal, so the process exits before its batch's state and offsets are committed to Redis and the
batch is replayed on restart (reports are at-least-once; breach ids repeat on replay).
"""

from __future__ import annotations

import time
from typing import Any

from services.common import serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import FatalError, PoisonMessage
from services.common.metrics import StandardMetrics
from services.common.producing import produce_waiting
from services.common.topics import TopicNamer
from services.drift.drift_metrics import DriftMetrics
from services.drift.monitor import ClosedWindow
from services.drift.report import breach, breach_kind, drift_report

SERVICE = "drift"


class Publisher:
    """Encodes and produces the drift service's records, and checks their delivery."""

    def __init__(
        self,
        producer: Any,
        namer: TopicNamer,
        standard: StandardMetrics,
        metrics: DriftMetrics,
    ) -> None:
        self.producer = producer
        self.namer = namer
        self.standard = standard
        self.metrics = metrics
        self.deadletters = DeadLetterWriter(namer.deadletter, SERVICE, serde.encode)
        self._errors: list[str] = []

    def windows(self, closed: list[ClosedWindow]) -> None:
        """A DriftReport per closed window and a ThresholdBreach per transition."""
        now = int(time.time() * 1000)
        for c in closed:
            ref, f = c.reference, c.figures
            self._produce(self.namer.drift, ref.deployment, "DriftReport", drift_report(ref, f))
            self.metrics.windows.inc()
            self.metrics.late.labels("event").inc(f.late_events)
            for t in c.transitions:
                record = breach(ref, f, t, now)
                self._produce(self.namer.breaches, ref.deployment, "ThresholdBreach", record)
                self.metrics.breaches.labels(breach_kind(t.metric), record["status"]).inc()

    def dead_letter(
        self,
        coords: tuple[str, int, int],
        key: bytes | None,
        value: bytes,
        poison: PoisonMessage,
        stage: str = "decode",
    ) -> None:
        """The original bytes, where they came from and why, to the dead-letter topic."""
        topic, partition, offset = coords
        dl = self.deadletters
        reason, detail = poison.reason, poison.detail
        record = dl.record(topic, partition, offset, key, value, stage, reason, detail)
        self._produce(dl.topic, key, "DeadLetter", record)
        self.standard.deadletter.labels(SERVICE, topic, poison.reason.value).inc()

    def _produce(
        self, topic: str, key: str | bytes | None, name: str, record: dict[str, Any]
    ) -> None:
        value = serde.encode(name, record)
        produce_waiting(
            self.producer,
            topic,
            value,
            key,
            headers=[serde.fingerprint_header(name)],
            on_delivery=self._on_delivery,
        )

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
        else:
            self.standard.produced.labels(SERVICE, msg.topic()).inc()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every delivery report; raise FatalError if anything was not delivered."""
        remaining = self.producer.flush(timeout_s)
        if remaining or self._errors:
            raise FatalError(
                f"outputs not delivered ({remaining} pending; {self._errors[:3]}): exiting "
                "so the batch is replayed from the offsets stored in Redis"
            )
