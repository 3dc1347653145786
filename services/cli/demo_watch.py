"""The demo's timeline: every record the services write, with the wall-clock time it was seen.

One consumer (assigned, never committing, from the start of the run's own topics) follows
`drift`, `breaches`, `retrain`, `models`, `deployments`, `governance`, `predictions` and
`deadletter` on a background thread. Control records are kept whole; predictions are only
counted (per model version and role) plus the set of association ids that got a served answer,
which is what "nothing lost" is checked against.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.common import serde
from services.common.errors import PoisonMessage, StreamopsError
from services.common.topics import TopicNamer

KEPT = ("drift", "breaches", "retrain", "models", "deployments", "governance", "deadletter")


@dataclasses.dataclass(frozen=True)
class Seen:
    """One record and when the demo saw it (epoch ms)."""

    at_ms: int
    record: dict[str, Any]


class Timeline:
    """Follows the run's output topics; thread-safe reads of what arrived so far."""

    def __init__(self, consumer_conf: dict[str, Any], namer: TopicNamer) -> None:
        conf = dict(consumer_conf, **{"enable.auto.commit": False})
        self._consumer = Consumer(conf)
        self.namer = namer
        self._logical = {namer.name(n): n for n in (*KEPT, "predictions")}
        self._lock = threading.Lock()
        self.records: dict[str, list[Seen]] = {n: [] for n in KEPT}
        self.predictions: collections.Counter[tuple[int, str, bool]] = collections.Counter()
        self.served_ids: set[str] = set()
        self.served_rows = 0
        self.undecodable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-timeline", daemon=True)

    def start(self, timeout_s: float = 30.0) -> Timeline:
        """Assign every partition of the followed topics from offset 0 and start following."""
        deadline = time.monotonic() + timeout_s
        parts: list[TopicPartition] = []
        for topic in self._logical:
            while True:
                try:
                    meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
                    if meta.error is None and meta.partitions:
                        break
                except KafkaException:
                    pass
                if time.monotonic() > deadline:
                    raise StreamopsError(f"topic {topic} has no partitions after {timeout_s} s")
                time.sleep(0.2)
            parts += [TopicPartition(topic, p, 0) for p in meta.partitions]
        self._consumer.assign(parts)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stop.set()
        self._thread.join(15)
        self._consumer.close()

    def get(self, logical: str) -> list[Seen]:
        """A copy of what arrived on one kept topic, in arrival order."""
        with self._lock:
            return list(self.records[logical])

    def prediction_counts(self) -> dict[tuple[int, str, bool], int]:
        """Prediction rows by (model version, role, served)."""
        with self._lock:
            return dict(self.predictions)

    def served(self) -> tuple[int, int]:
        """(distinct association ids with a served prediction, served rows)."""
        with self._lock:
            return len(self.served_ids), self.served_rows

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self._consumer.consume(500, 0.2)
            now = int(time.time() * 1000)
            with self._lock:
                for msg in messages:
                    if msg.error() is None:
                        self._take(msg.topic(), msg.value(), now)

    def _take(self, topic: str, value: bytes | None, now: int) -> None:
        logical = self._logical[topic]
        if value is None:
            return
        try:
            _, record = serde.decode(value)
        except PoisonMessage:
            self.undecodable += 1
            return
        if logical != "predictions":
            self.records[logical].append(Seen(now, record))
            return
        served = bool(record["served"])
        self.predictions[(int(record["model_version"]), str(record["role"]), served)] += 1
        if served:
            self.served_rows += 1
            self.served_ids.add(record["association_id"])


def slice_phases(
    consumer_conf: dict[str, Any], slices: list[dict[str, Any]], events_topic: str
) -> collections.Counter[str]:
    """The demo phase (attribute `phase`) of every event inside a model's stream slice ranges."""
    wanted = {
        s["partition"]: (s["start_offset"], s["end_offset"])
        for s in slices
        if s["topic"] == events_topic and s["end_offset"] >= s["start_offset"]
    }
    phases: collections.Counter[str] = collections.Counter()
    if not wanted:
        return phases
    consumer = Consumer(dict(consumer_conf, **{"enable.auto.commit": False}))
    consumer.assign([TopicPartition(events_topic, p, lo) for p, (lo, _) in wanted.items()])
    todo, deadline = set(wanted), time.monotonic() + 30
    try:
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is not None or msg.partition() not in todo:
                    continue
                if msg.offset() > wanted[msg.partition()][1]:
                    todo.discard(msg.partition())
                    continue
                try:
                    _, record = serde.decode(msg.value(), expected="FeatureEvent", allow_json=True)
                    phases[record.get("attributes", {}).get("phase", "?")] += 1
                except PoisonMessage:
                    phases["malformed"] += 1
                if msg.offset() >= wanted[msg.partition()][1]:
                    todo.discard(msg.partition())
    finally:
        consumer.close()
    return phases
