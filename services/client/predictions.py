"""Iterate one deployment's predictions as dicts, from now or from the beginning of the topic.

Partitions are assigned directly, without joining a consumer group, and no offset is ever
committed: reading predictions in a notebook then never moves a service's offsets, never
splits the partitions with another reader that happens to share a group id, and never waits
for a rebalance; each iterator sees every partition. "From now" is the end of each partition
when `predictions()` is called (read at once, so a prediction written right after the call is
not missed). Transactional writes are read committed, as the services read them.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from services.common.errors import PoisonMessage, StreamopsError
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer

log = logging.getLogger("streamops.client")
POLL_S = 0.2
BATCH = 500
LEADER_WAIT_S = 10.0


class PredictionStream(Iterator[dict[str, Any]]):
    """Predictions of one deployment, decoded; a context manager that closes its consumer.

    With `timeout`, iteration ends after `timeout` seconds without a prediction of this
    deployment (other deployments' rows do not count); without it, it follows the topic until
    `close()`. Messages that cannot be decoded are skipped and counted in `skipped` (the drift
    service dead-letters them).
    """

    def __init__(
        self,
        conf: dict[str, Any],
        namer: TopicNamer,
        deployment: str,
        from_beginning: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.deployment, self.timeout = deployment, timeout
        self.topic = namer.predictions
        self.bootstrap = conf.get("bootstrap.servers", "")
        self.skipped = 0
        self._decode = TopicDecoder(namer)
        self._buffer: collections.deque[Any] = collections.deque()
        self._consumer = Consumer({**conf, "logger": log})
        self._closed = False
        try:
            self._consumer.assign(self._start(from_beginning))
        except KafkaException as exc:
            self.close()
            raise StreamopsError(
                f"cannot read {self.topic}: {exc}; is the broker at {self.bootstrap} up?"
            ) from None
        except BaseException:
            self.close()
            raise
        self._last = time.monotonic()

    def _start(self, from_beginning: bool) -> list[TopicPartition]:
        meta = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise StreamopsError(
                f"topic {self.topic} not found; create the topics with `streamops topics`"
            )
        starts = []
        for p in sorted(meta.partitions):
            if from_beginning:
                starts.append(TopicPartition(self.topic, p, OFFSET_BEGINNING))
            else:
                starts.append(TopicPartition(self.topic, p, self._end(p)))
        return starts

    def _end(self, partition: int) -> int:
        """The partition's end offset, waiting out a leader election (a topic just created)."""
        deadline = time.monotonic() + LEADER_WAIT_S
        while True:
            try:
                tp = TopicPartition(self.topic, partition)
                return int(self._consumer.get_watermark_offsets(tp, timeout=10)[1])
            except KafkaException as exc:
                if not exc.args[0].retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __iter__(self) -> PredictionStream:
        return self

    def __next__(self) -> dict[str, Any]:
        while not self._closed:
            while self._buffer:
                row = self._row(self._buffer.popleft())
                if row is not None:
                    self._last = time.monotonic()
                    return row
            if self.timeout is not None and time.monotonic() - self._last > self.timeout:
                break
            self._buffer.extend(self._consumer.consume(BATCH, POLL_S))
        self.close()
        raise StopIteration

    def _row(self, msg: Any) -> dict[str, Any] | None:
        if msg.error() is not None:
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("reading %s: %s", self.topic, msg.error())
            return None
        try:
            _, record = self._decode(msg.topic(), msg.value() or b"")
        except PoisonMessage as exc:
            self.skipped += 1
            log.debug("skipped %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)
            return None
        return record if record["deployment"] == self.deployment else None

    def close(self) -> None:
        """Stop reading and close the consumer (iteration then ends)."""
        if not self._closed:
            self._closed = True
            self._buffer.clear()
            self._consumer.close()

    def __enter__(self) -> PredictionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
