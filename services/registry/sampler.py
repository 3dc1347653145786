"""Samples the tail of the busy topics into LiveStats, at a bounded cost whatever their rate.

Every round: one watermark query per partition gives each topic's rate (offsets are counts, so
this costs no message bytes); then at most `per_partition` of the newest records per partition
not read before are fetched and decoded, and the partitions are unassigned again so librdkafka
does not keep prefetching a 20k/s stream between rounds. No consumer group, no commits: the
sampler only reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.common import serde
from services.common.errors import PoisonMessage
from services.common.refused_sources import source_of
from services.common.topics import TopicNamer
from services.registry.live import LiveStats

log = logging.getLogger(__name__)

SAMPLED = ("events", "predictions", "deadletter")
ROUND_READ_S = 1.0  # the most one round spends fetching
# After a broker pause, librdkafka can keep a partition's leader unknown for a consumer that has
# no assignment ("Local: Unknown partition" on every watermark query, for minutes, found by the
# soak); a new consumer looks the leaders up afresh.
REPLACE_AFTER = 3  # failed rounds in a row


class TailSampler:
    """A background thread feeding LiveStats from bounded tails of events/predictions/deadletter."""

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        namer: TopicNamer,
        live: LiveStats,
        known: Callable[[], set[str]],
        per_partition: int,
        interval_s: float,
        consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
    ) -> None:
        conf = dict(consumer_conf)
        conf.update(
            {
                "enable.auto.commit": False,
                "fetch.max.bytes": 4 * 1024 * 1024,
                "max.partition.fetch.bytes": 1024 * 1024,
                "queued.max.messages.kbytes": 4096,
                "fetch.wait.max.ms": 100,
            }
        )
        self._conf = conf
        self._factory = consumer_factory
        self._consumer = consumer_factory(conf)
        self._failures = 0
        self.replaced = 0  # consumers replaced after failing rounds
        self._topics = {namer.name(t): t for t in SAMPLED}
        self._live = live
        self._known = known
        self._per_partition = per_partition
        self._interval_s = interval_s
        self._partitions: dict[str, list[int]] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._last: tuple[float, dict[str, int]] | None = None
        self._events_topic = namer.events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tail-sampler", daemon=True)

    def start(self) -> TailSampler:
        """Start sampling on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the consumer."""
        self._stop.set()
        self._thread.join(10)

    def alive(self) -> bool:
        """The sampling thread is running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self.round()
                self._stop.wait(max(0.0, self._interval_s - (time.monotonic() - started)))
        finally:
            self._consumer.close()

    def round(self) -> bool:
        """One sampling round; a broker error is logged and retried next round, and after
        REPLACE_AFTER failed rounds in a row the consumer is replaced. True when it sampled."""
        try:
            self.sample_once()
        except KafkaException as exc:
            self._failures += 1
            log.warning("sampling round failed (retrying next round): %s", exc)
            if self._failures >= REPLACE_AFTER:
                self._replace()
            return False
        self._failures = 0
        return True

    def _replace(self) -> None:
        log.warning("sampling failed %d rounds in a row: replacing the consumer", self._failures)
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.info("closing the failing consumer: %s", exc)
        self._consumer = self._factory(self._conf)
        self._partitions.clear()
        self._failures = 0
        self.replaced += 1

    def _partitions_of(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            meta = self._consumer.list_topics(topic, timeout=5).topics.get(topic)
            if meta is None or meta.error is not None:
                return []  # created later; asked again next round
            self._partitions[topic] = sorted(meta.partitions)
        return self._partitions[topic]

    def sample_once(self) -> None:
        """One round: rates from offsets, then the newest unread records up to the bound."""
        ends: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in self._topics:
            for p in self._partitions_of(topic):
                ends[(topic, p)] = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=5
                )
        now = time.time()
        totals = {self._topics[t]: 0 for t in self._topics}
        for (topic, _p), (_lo, hi) in ends.items():
            totals[self._topics[topic]] += hi
        rates: dict[str, float | None] = {t: None for t in totals}
        if self._last is not None:
            elapsed = max(now - self._last[0], 1e-3)
            rates = {t: max(0, n - self._last[1].get(t, n)) / elapsed for t, n in totals.items()}
        self._last = (now, totals)

        wanted: dict[tuple[str, int], int] = {}
        for tp, (lo, hi) in ends.items():
            start = max(lo, hi - self._per_partition, self._next.get(tp, hi - self._per_partition))
            if start < hi:
                wanted[tp] = hi
                self._next[tp] = hi
                ends[tp] = (start, hi)
        known = self._known()
        self._live.begin_round()
        if wanted:
            self._read(wanted, ends, known)
        self._live.end_round(int(now * 1000), rates)

    def _read(
        self,
        wanted: dict[tuple[str, int], int],
        ends: dict[tuple[str, int], tuple[int, int]],
        known: set[str],
    ) -> None:
        self._consumer.assign([TopicPartition(t, p, ends[(t, p)][0]) for t, p in wanted])
        deadline = time.monotonic() + ROUND_READ_S
        try:
            while wanted and time.monotonic() < deadline:
                for msg in self._consumer.consume(500, timeout=0.1):
                    if msg.error() is not None:
                        continue
                    tp = (msg.topic(), msg.partition())
                    hi = wanted.get(tp)
                    if hi is None or msg.offset() >= hi:
                        continue
                    if msg.offset() >= hi - 1:
                        del wanted[tp]
                    self._one(self._topics[tp[0]], msg, known)
        finally:
            self._consumer.unassign()

    def _one(self, logical: str, msg: Any, known: set[str]) -> None:
        value = msg.value()
        if value is None:
            return
        produced = msg.timestamp()[1]
        try:
            if logical == "predictions":
                # An external deployment's service may report its predictions as JSON.
                _, row = serde.decode(value, expected="Prediction", allow_json=True)
                dep = row["deployment"] if row["deployment"] in known else None
                self._live.add_prediction(
                    dep, row["served"], produced - row["event_time"], produced, row["prediction"]
                )
            elif logical == "events":
                _, event = serde.decode(value, expected="FeatureEvent", allow_json=True)
                dep = event["deployment"] if event["deployment"] in known else None
                self._live.add_event(dep, event["features"], produced)
            else:
                _, letter = serde.decode(value, expected="DeadLetter")
                dep = self._attribute(letter, known)
                self._live.add_deadletter(
                    dep,
                    letter["service"],
                    letter["stage"],
                    letter["reason"],
                    produced,
                    source_of(letter),
                )
        except PoisonMessage:
            if logical == "events":
                self._live.add_event(None, {}, produced)  # still part of the topic's traffic
            return

    def _attribute(self, letter: dict[str, Any], known: set[str]) -> str | None:
        """The deployment a dead letter belongs to, when its original is a readable event."""
        if letter["source_topic"] != self._events_topic:
            return None
        try:
            _, event = serde.decode(letter["original"], expected="FeatureEvent", allow_json=True)
        except PoisonMessage:
            return None  # unreadable input: counted for the system, not for a deployment
        return event["deployment"] if event["deployment"] in known else None
