"""What the fault benchmarks watch the broker with: a paced feeder, a group watch, a reader.

Each probe records plain ``(time, value)`` samples on the wall clock; `loadtest.fault_timing`
turns them into figures.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from loadtest.bench_scorer import EventBytes
from services.common import serde
from services.common.admin import create_topic
from services.common.kafka_config import KafkaConfig
from services.common.producing import produce_waiting
from services.common.topics import TopicNamer
from services.trainer.credit import credit_rows
from tests.kafka_support import ServiceProcess


def log(text: str) -> None:
    """Progress for the person running the benchmark."""
    print(f"[bench_faults] {text}", flush=True)


class Feeder(threading.Thread):
    """Credit events at a fixed rate on one topic (ids ``<tag><n>``, event time now) until
    stopped; `delivered()` is the set of ids the broker acknowledged."""

    def __init__(self, bootstrap: str, topic: str, tag: str, rate: int) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.tag, self.rate = bootstrap, topic, tag, rate
        self.sent = 0
        self.failed: set[str] = set()
        self.unflushed = 0
        self.halt = threading.Event()

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed.add(msg.key().decode())

    def run(self) -> None:
        """Produce on schedule; flush once stopped."""
        events = EventBytes([f for f, _ in credit_rows(2000, seed=11)])
        producer = Producer(KafkaConfig(self.bootstrap, "bench-faults").producer())
        started = time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                aid = f"{self.tag}{self.sent}"
                value = events.message(self.sent, aid, int(time.time() * 1000))
                produce_waiting(producer, self.topic, value, aid, on_delivery=self._report)
                self.sent += 1
            producer.poll(0)
            time.sleep(0.005)
        self.unflushed = producer.flush(30)

    def finish(self) -> None:
        """Stop producing and wait for the last acknowledgements."""
        self.halt.set()
        self.join(60)

    def delivered(self) -> set[str]:
        """The ids of every acknowledged event."""
        return {f"{self.tag}{i}" for i in range(self.sent)} - self.failed


class GroupWatch(threading.Thread):
    """Samples a group's committed total and lag on one topic every `interval_s`.

    read_uncommitted: with it the broker answers with the committed offsets instead of
    "unstable" while an exactly-once member has offsets pending in an open transaction.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "isolation.level": "read_uncommitted",
            }
        )
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.interval_s = interval_s
        self.committed: list[tuple[float, int]] = []
        self.lag: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def sample(self) -> tuple[int, int]:
        """(committed total, lag) now."""
        done = self.consumer.committed(self.tps, timeout=5)
        ends = [
            self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1] for tp in self.tps
        ]
        offsets = [max(tp.offset, 0) for tp in done]
        return sum(offsets), sum(max(end - o, 0) for end, o in zip(ends, offsets, strict=True))

    def run(self) -> None:
        """Sample until stopped; a sample the broker does not answer in time is skipped."""
        while not self.halt.is_set():
            t = time.time()
            try:
                total, lag = self.sample()
            except KafkaException:
                self.halt.wait(self.interval_s)
                continue
            self.committed.append((t, total))
            self.lag.append((t, lag))
            self.halt.wait(max(0.0, self.interval_s - (time.time() - t)))
        self.consumer.close()

    def finish(self) -> None:
        """Stop sampling."""
        self.halt.set()
        self.join(15)


def read_rows(
    bootstrap: str,
    topic: str,
    record: str,
    appended: bool = False,
    idle_s: float = 2.0,
    timeout_s: float = 120.0,
) -> list[tuple[float, dict[str, Any]]]:
    """Every committed record of a topic as (timestamp in s, decoded record); `appended`: the
    timestamps must be the broker's append times (a topic made by `stamp_appends`)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-faults-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    parts = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: list[tuple[float, dict[str, Any]]] = []
    at_eof: set[int] = set()
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() < deadline:
        batch = consumer.consume(1000, 0.2)
        if not batch and len(at_eof) == len(parts) and time.monotonic() - last > idle_s:
            break
        for msg in batch:
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                continue
            at_eof.discard(msg.partition())
            last = time.monotonic()
            kind, ms = msg.timestamp()
            if appended and kind != TIMESTAMP_LOG_APPEND_TIME:
                raise RuntimeError(f"{topic} does not stamp records with their append time")
            out.append((ms / 1000, serde.decode(msg.value(), expected=record)[1]))
    consumer.close()
    return out


def stamp_appends(bootstrap: str, namer: TopicNamer, logical: list[str]) -> None:
    """Create these topics (before the others) with broker append times as their timestamps."""
    for name in logical:
        spec = namer.spec(name)
        config = {**spec.config, "message.timestamp.type": "LogAppendTime"}
        create_topic({"bootstrap.servers": bootstrap}, namer.name(name), spec.partitions, config)


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic under a benchmark's prefix."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, request_timeout=30).values():
            future.result()


def stop(proc: ServiceProcess) -> int | None:
    """SIGTERM a running scorer (SIGKILL if it hangs); its exit code (None: not running)."""
    if not proc.alive():
        return None
    try:
        return proc.terminate()[0]
    except subprocess.TimeoutExpired:
        proc.kill9()
        return -9
