"""Read a stream slice from Kafka: the newest N labelled events of a deployment, and replay it.

Reading goes backwards from the end of every partition in chunks that double in size: first
`actuals` until N labels of the deployment are known, then `events` until N of them are matched
(or the partitions are exhausted, or `max_scan` events were read). Only the labels and the
matched events are kept, so memory is about N rows whatever the topics hold. The data version
records the actuals ranges read and, for events, the tightest range per partition holding the
selected rows; `replay` joins exactly those ranges again and gives the same rows and hash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from services.common.errors import PoisonMessage, RetryableError
from services.trainer.dataset import Dataset
from services.trainer.stream_join import SliceJoin, event_ranges, joined_dataset

log = logging.getLogger(__name__)

Decode = Callable[[str, bytes], tuple[str, dict[str, Any]]]
Ranges = dict[int, tuple[int, int]]  # partition -> (first, last) offsets, inclusive


class StreamSliceReader:
    """Reads the tails of `events` and `actuals` with an assigned (never committing) consumer."""

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        events_topic: str,
        actuals_topic: str,
        decode: Decode,
        max_scan: int = 1_000_000,
        min_chunk: int = 500,
        idle_timeout_s: float = 30.0,
    ) -> None:
        conf = dict(consumer_conf)
        conf.update({"enable.auto.commit": False, "enable.partition.eof": True})
        self._conf = conf
        self.events_topic = events_topic
        self.actuals_topic = actuals_topic
        self._decode = decode
        self.max_scan = max_scan
        self.min_chunk = min_chunk
        self.idle_timeout_s = idle_timeout_s

    def read(
        self,
        deployment: str,
        last_n: int,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        progress: Callable[[str], None] | None = None,
        task: str | None = None,
    ) -> Dataset:
        """The newest ``last_n`` labelled events of ``deployment`` as a stream Dataset."""
        join = SliceJoin(deployment)
        consumer = Consumer(self._conf)
        try:
            actual_ranges = self._backwards(
                consumer, self.actuals_topic, last_n, lambda: join.label_count >= last_n, join
            )
            if progress:
                progress(f"{join.label_count} labels of {deployment!r} in {self.actuals_topic}")
            self._backwards(
                consumer,
                self.events_topic,
                last_n,
                lambda: (
                    join.matched_ids >= min(last_n, join.label_count)
                    or join.events_read >= self.max_scan
                ),
                join,
            )
        finally:
            consumer.close()
        rows = join.select(last_n)
        if progress:
            progress(f"joined {len(rows)} labelled events ({join.events_read} events read)")
        slices = event_ranges(self.events_topic, rows) + _as_slices(
            self.actuals_topic, actual_ranges
        )
        return joined_dataset(
            rows,
            deployment=deployment,
            uri=f"stream:{self.events_topic}+{self.actuals_topic}?deployment={deployment}"
            f"&last={last_n}",
            slices=slices,
            feature_names=feature_names,
            categorical=categorical,
            task=task,
        )

    def replay(
        self,
        deployment: str,
        slices: Sequence[Mapping[str, Any]],
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        task: str | None = None,
    ) -> Dataset:
        """Join exactly the recorded offset ranges again (same rows, same content hash)."""
        join = SliceJoin(deployment)
        by_topic: dict[str, Ranges] = {}
        for s in slices:
            ranges = by_topic.setdefault(s["topic"], {})
            ranges[int(s["partition"])] = (int(s["start_offset"]), int(s["end_offset"]))
        consumer = Consumer(self._conf)
        try:
            for topic, add in ((self.actuals_topic, join.add_actual), (self.events_topic, None)):
                for p, offset, record in self._records(consumer, topic, by_topic.get(topic, {})):
                    (add or join.add_event)(p, offset, record)
        finally:
            consumer.close()
        rows = join.select(None)
        return joined_dataset(
            rows,
            deployment=deployment,
            uri=f"stream:{self.events_topic}+{self.actuals_topic}?deployment={deployment}&replay",
            slices=list(slices),
            feature_names=feature_names,
            categorical=categorical,
            task=task,
        )

    # -- reading ---------------------------------------------------------------------------

    def _backwards(
        self,
        consumer: Consumer,
        topic: str,
        want: int,
        enough: Callable[[], bool],
        join: SliceJoin,
    ) -> Ranges:
        """Read chunks from the end of every partition towards the start until ``enough()``."""
        marks = _watermarks(consumer, topic)
        starts = {p: hi for p, (_lo, hi) in marks.items()}
        step = max(self.min_chunk, -(-want // max(1, len(marks))))
        add = join.add_actual if topic == self.actuals_topic else join.add_event
        while not enough() and any(starts[p] > lo for p, (lo, _) in marks.items()):
            chunk = {
                p: (max(lo, starts[p] - step), starts[p] - 1)
                for p, (lo, _) in marks.items()
                if starts[p] > lo
            }
            for p, offset, record in self._records(consumer, topic, chunk):
                add(p, offset, record)
            starts.update({p: first for p, (first, _) in chunk.items()})
            step *= 2
        return {p: (starts[p], hi - 1) for p, (_lo, hi) in marks.items() if starts[p] < hi}

    def _records(
        self, consumer: Consumer, topic: str, ranges: Ranges
    ) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """Decoded records of the inclusive ranges, partition by partition as they arrive."""
        pending = {p: last for p, (first, last) in ranges.items() if first <= last}
        if not pending:
            return
        consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in pending])
        deadline = time.monotonic() + self.idle_timeout_s
        try:
            while pending:
                msg = consumer.poll(0.5)
                if msg is None:
                    if time.monotonic() > deadline:
                        raise RetryableError(
                            f"no data from {topic} for {self.idle_timeout_s:.0f} s while "
                            f"reading partitions {sorted(pending)}"
                        )
                    continue
                deadline = time.monotonic() + self.idle_timeout_s
                p = msg.partition()
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.pop(p, None)
                        continue
                    raise RetryableError(f"reading {topic}: {err}")
                if p not in pending or msg.offset() > pending[p]:
                    pending.pop(p, None)
                    continue
                if msg.offset() >= pending[p]:
                    pending.pop(p)
                value = msg.value()
                if value is None:
                    continue
                try:
                    _name, record = self._decode(topic, value)
                except PoisonMessage as exc:
                    log.debug("skipping undecodable %s[%d]@%d: %s", topic, p, msg.offset(), exc)
                    continue
                yield p, msg.offset(), record
        finally:
            consumer.unassign()


def _watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise RetryableError(f"topic {topic} does not exist; run `streamops topics`")
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        for p in sorted(meta.partitions)
    }


def _as_slices(topic: str, ranges: Ranges) -> list[dict[str, Any]]:
    return [
        {"topic": topic, "partition": p, "start_offset": first, "end_offset": last}
        for p, (first, last) in sorted(ranges.items())
    ]
