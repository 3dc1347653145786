"""Replay control topics (models, deployments) from the beginning, then follow them.

A background thread with its own consumer and no consumer group (every partition assigned from
the beginning), so every process sees the whole history of the compacted topics. `wait_ready`
returns once everything that existed at start has been applied: a service starts serving only
with the state it would have after a full replay.

Each record goes through a `RecordApplier`: a record that cannot be decoded or applied is
retried where that can help and otherwise dead-lettered (the optional `dead_letter` sink, e.g.
a `FollowerDeadLetters`) and counted, never skipped silently. There are no commits: every start
replays the topics, so a record that always fails is dead-lettered again at every start (dead
letters are grouped by source coordinates when they are counted for people).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from services.common import serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import PoisonMessage, RetryableError
from services.common.metrics import StandardMetrics
from services.common.record_applier import Apply, DeadLetterSink, Decode, RecordApplier, Refusal

log = logging.getLogger(__name__)


class FollowerDeadLetters:
    """A `DeadLetterSink` that produces each refusal to the dead-letter topic and counts it."""

    def __init__(
        self,
        producer: Producer,
        writer: DeadLetterWriter,
        metrics: StandardMetrics | None = None,
        flush_timeout_s: float = 10.0,
    ) -> None:
        self._producer = producer
        self._writer = writer
        self._metrics = metrics
        self._flush_timeout_s = flush_timeout_s

    def __call__(self, refusal: Refusal) -> None:
        """Produce the dead letter and wait for it (refusals are rare; losing one is not ok)."""
        record = refusal.dead_letter(self._writer)
        self._producer.produce(self._writer.topic, self._writer.encode(record), refusal.key)
        if self._producer.flush(self._flush_timeout_s):
            log.error("a dead letter for %s was not delivered in time", refusal.topic)
        if self._metrics is not None:
            self._metrics.deadletter.labels(
                self._writer.service, refusal.topic, refusal.reason.value
            ).inc()

    @classmethod
    def own(
        cls, producer_conf: dict[str, Any], topic: str, service: str, metrics: StandardMetrics
    ) -> FollowerDeadLetters:
        """A sink with a producer of its own: flushing a service's main producer from the
        follower's thread would serve that producer's delivery reports on the wrong thread."""
        return cls(Producer(producer_conf), DeadLetterWriter(topic, service, serde.encode), metrics)


class TopicFollower:
    """Applies every record of some topics, in order per partition, on a background thread."""

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        topics: list[str],
        decode: Decode,
        apply: Apply,
        on_poison: Callable[[str, bytes, PoisonMessage], None] | None = None,
        dead_letter: DeadLetterSink | None = None,
        apply_attempts: int = 3,
    ) -> None:
        conf = dict(consumer_conf)
        conf.update({"enable.auto.commit": False, "enable.partition.eof": True})
        self._consumer = Consumer(conf)
        self._topics = topics
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.applier = RecordApplier(
            decode, apply, on_poison, dead_letter, attempts=apply_attempts, stop=self._stop
        )
        self._thread = threading.Thread(target=self._run, name="topic-follower", daemon=True)
        self._pending: set[tuple[str, int]] = set()

    def start(self) -> TopicFollower:
        """Assign every partition from the beginning and start the thread."""
        assignment = []
        for topic in self._topics:
            meta = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                raise RetryableError(f"topic {topic} does not exist; run `streamops topics`")
            for p in meta.partitions:
                lo, hi = self._watermarks(TopicPartition(topic, p))
                if hi > lo:
                    self._pending.add((topic, p))
                assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        self._consumer.assign(assignment)
        if not self._pending:
            self._ready.set()
        self._thread.start()
        return self

    def _watermarks(self, tp: TopicPartition, timeout_s: float = 15.0) -> tuple[int, int]:
        # A topic created a moment ago may not have a partition leader yet: retry until it has.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._consumer.get_watermark_offsets(tp, timeout=5)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise RetryableError(
                        f"no leader for {tp.topic}[{tp.partition}]: {exc}"
                    ) from None
                time.sleep(0.2)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the replay reached the end of every partition (or raise)."""
        if not self._ready.wait(timeout_s):
            raise RetryableError(
                f"replay of {', '.join(self._topics)} not finished in "
                f"{timeout_s:.0f} s ({len(self._pending)} partitions pending)"
            )

    def stop(self) -> None:
        """Stop the thread and close the consumer."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                msg = self._consumer.poll(0.1)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self._pending.discard((msg.topic(), msg.partition()))
                        if not self._pending:
                            self._ready.set()
                    else:
                        log.warning("follower consumer error: %s", err)
                    continue
                self.applier.handle(
                    msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()
                )
        finally:
            self._consumer.close()

    @property
    def applied(self) -> int:
        """Records applied so far."""
        return self.applier.applied
