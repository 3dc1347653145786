"""What the soak measures: champion predictions read back, consumer lag, process RSS and open
files, Redis memory and /metrics line counts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from services.common import serde

PAGE = os.sysconf("SC_PAGE_SIZE")
T = TypeVar("T")


class PredictionWatch:
    """Reads every prediction of the run from the beginning; champion rows counted per event."""

    def __init__(self, conf: dict[str, Any], topic: str, run_id: str) -> None:
        self.prefix = f"{run_id}-"
        self.rows = array("I")  # champion rows of event i
        self.max_index = -1
        self.versions: dict[int, float] = {}  # model version -> first time it answered
        self.undecodable = 0
        self._stop = threading.Event()
        self._consumer = Consumer({**conf, "enable.partition.eof": False, "log_level": 3})
        parts = self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self._thread = threading.Thread(target=self._run, name="soak-watch", daemon=True)

    def start(self) -> PredictionWatch:
        """Start reading."""
        self._thread.start()
        return self

    def _count(self, index: int) -> None:
        if index >= len(self.rows):
            self.rows.extend([0] * (index + 1 - len(self.rows) + 10_000))
        self.rows[index] += 1
        self.max_index = max(self.max_index, index)

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(2000, 0.2):
                if msg.error():
                    continue
                key = (msg.key() or b"").decode(errors="replace")
                if not key.startswith(self.prefix):
                    continue
                try:
                    _name, row = serde.decode(msg.value())
                except Exception:  # noqa: BLE001 - counted; the checker sees the event unanswered
                    self.undecodable += 1
                    continue
                if row.get("role") != "champion":
                    continue
                self.versions.setdefault(int(row["model_version"]), time.monotonic())
                self._count(int(key[len(self.prefix) :]))

    def champion_rows(self, n: int) -> list[int]:
        """Champion rows of events 0..n-1."""
        rows = list(self.rows[:n])
        return rows + [0] * (n - len(rows))

    def all_answered(self, start: int, end: int) -> bool:
        """Every event start..end-1 has a champion row."""
        return end <= len(self.rows) and all(self.rows[start:end])

    def answered(self, n: int) -> int:
        """How many of events 0..n-1 have a champion row."""
        return sum(1 for r in self.rows[:n] if r)

    def close(self) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


class LagReader:
    """Consumer-group lag (high watermark minus committed offset) over the group's topics.

    The sampler and the fault probes share one reader, so calls are serialised. After a failed
    call the client is replaced: once the broker was paused, an idle client's metadata can stay
    without the partitions ("Unknown partition") long after the broker is back.
    """

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self._conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "log_level": 3,
            "isolation.level": "read_uncommitted",
            "enable.auto.commit": False,
        }
        self._consumer = Consumer(self._conf)
        self.topics = topics
        self._tps: list[TopicPartition] = []
        self._lock = threading.Lock()

    def _partitions(self, timeout_s: float) -> list[TopicPartition]:
        if not self._tps:
            meta = self._consumer.list_topics(timeout=timeout_s).topics
            self._tps = [TopicPartition(t, p) for t in self.topics for p in meta[t].partitions]
        return self._tps

    def _call(self, fn: Callable[[], T]) -> T:
        with self._lock:
            try:
                return fn()
            except KafkaException:
                with contextlib.suppress(Exception):
                    self._consumer.close()
                self._consumer = Consumer(self._conf)
                raise

    def marks(self, timeout_s: float = 5.0) -> dict[tuple[str, int], int]:
        """High watermark of every partition now."""
        return self._call(lambda: {
            (tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=timeout_s)[1]
            for tp in self._partitions(timeout_s)
        })  # fmt: skip

    def caught_up(self, marks: dict[tuple[str, int], int], timeout_s: float = 5.0) -> bool:
        """The group has committed past `marks` on every partition: it processed all before."""
        committed = self._call(
            lambda: self._consumer.committed(self._partitions(timeout_s), timeout=timeout_s)
        )
        return all(tp.offset >= marks[(tp.topic, tp.partition)] for tp in committed)

    def lag(self, timeout_s: float = 5.0) -> int:
        """Total lag now; raises KafkaException when the broker does not answer in time."""

        def total() -> int:
            committed = self._consumer.committed(self._partitions(timeout_s), timeout=timeout_s)
            lag = 0
            for tp in committed:
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout_s)
                lag += high - tp.offset if tp.offset >= 0 else high
            return lag

        return self._call(total)

    def close(self) -> None:
        """Close the reader."""
        with self._lock:
            self._consumer.close()


def process_stats(pid: int) -> tuple[float, int] | None:
    """(RSS in MiB, open file descriptors) of a live process, from /proc; None when gone."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None
    return pages * PAGE / 2**20, fds


def metric_lines(port: int, timeout_s: float = 3.0) -> int | None:
    """Sample lines (not comments) of a /metrics page; None when it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s).text
    except httpx.HTTPError:
        return None
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def redis_used_memory(client: Any) -> int | None:
    """Redis INFO used_memory in bytes; None when Redis does not answer."""
    try:
        return int(client.info("memory")["used_memory"])
    except Exception:  # noqa: BLE001 - Redis down during its restart fault: a gap in the series
        return None
