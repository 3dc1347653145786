"""Replay control topics (models, deployments) from the beginning, then follow them.

A background thread with its own consumer and no consumer group (every partition assigned from
the beginning), so every process sees the whole history of the compacted topics. `wait_ready`
returns once everything that existed at start has been applied: a service starts serving only
with the state it would have after a full replay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from services.common.errors import PoisonMessage, RetryableError

log = logging.getLogger(__name__)

Apply = Callable[[str, dict[str, Any]], None]  # (topic, decoded record)
Decode = Callable[[str, bytes], tuple[str, dict[str, Any]]]


class TopicFollower:
    """Applies every record of some topics, in order per partition, on a background thread."""

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        topics: list[str],
        decode: Decode,
        apply: Apply,
        on_poison: Callable[[str, bytes, PoisonMessage], None] | None = None,
    ) -> None:
        conf = dict(consumer_conf)
        conf.update({"enable.auto.commit": False, "enable.partition.eof": True})
        self._consumer = Consumer(conf)
        self._topics = topics
        self._decode = decode
        self._apply = apply
        self._on_poison = on_poison
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topic-follower", daemon=True)
        self._pending: set[tuple[str, int]] = set()
        self.applied = 0

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
                self._handle(msg.topic(), msg.value())
        finally:
            self._consumer.close()

    def _handle(self, topic: str, value: bytes | None) -> None:
        if value is None:  # a tombstone on a compacted topic: nothing to apply
            return
        started = time.perf_counter()
        try:
            _name, record = self._decode(topic, value)
        except PoisonMessage as exc:
            log.warning("undecodable record on %s: %s", topic, exc)
            if self._on_poison:
                self._on_poison(topic, value, exc)
            return
        try:
            self._apply(topic, record)
        except Exception:  # one bad record must never stop the follower
            log.exception("applying a record from %s failed", topic)
        self.applied += 1
        log.debug("applied %s record in %.1f ms", topic, 1000 * (time.perf_counter() - started))
