"""Private Kafka nodes for broker-fault tests (R1, R20), and a ledger of what a producer was told.

The shared broker on 9092 must never be killed: other tests use it. `PrivateKafka` runs the
project's own `infra/kafka/kafka.sh` with its own var dir and free ports, so a test can kill -9 a
node and restart it on the same ports and data. `Deliveries` records every delivery report of
one producer and checks them against what a reader finds in the topic afterwards.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from services.common.producing import delivery_outcome, produce_waiting
from tests import kafka_login

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "infra" / "kafka" / "kafka.sh"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """A base port p with p .. p+size-1 all free, below Linux's ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 32000, 2)
        if all(_free(base + i) for i in range(size)):
            return base
    raise AssertionError(f"no {size} consecutive free ports found")


class PrivateKafka:
    """One node or a three-node cluster of our own, driven through infra/kafka/kafka.sh."""

    def __init__(
        self, var_dir: Path, brokers: int = 1, heap: str = "512m", secured: bool | None = None
    ) -> None:
        self.var_dir = var_dir
        self.brokers = brokers
        self.base_port = free_port_block(2 * brokers)
        self.env = dict(os.environ)
        if secured is not None:  # else as the suite's own broker (STREAMOPS_INSECURE)
            self.env["STREAMOPS_INSECURE"] = "0" if secured else "1"
        self.env.update(
            STREAMOPS_VAR_DIR=str(var_dir),
            STREAMOPS_KAFKA_PORT=str(self.base_port),
            STREAMOPS_KAFKA_CONTROLLER_PORT=str(self.base_port + 1),
            STREAMOPS_KAFKA_BROKERS=str(brokers),
            STREAMOPS_KAFKA_HEAP=heap,
            PYTHON=sys.executable,
        )
        kafka_login.register(self.bootstrap, var_dir)

    def port(self, node: int) -> int:
        """Client port of node 1..brokers."""
        return self.base_port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        """Every node's address, so clients find the cluster whichever node is down."""
        return ",".join(f"127.0.0.1:{self.port(n)}" for n in range(1, self.brokers + 1))

    def _script(self, *args: str, timeout_s: float = 150.0) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"kafka.sh {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def start(self, node: int | None = None) -> float:
        """Start every node (or one) and wait until ready; returns the seconds it took."""
        started = time.monotonic()
        self._script("start", *([str(node)] if node else []))
        return time.monotonic() - started

    def kill9(self, node: int | None = None) -> None:
        """SIGKILL every node (or one), as a crash would; data dirs are kept."""
        self._script("kill", *([str(node)] if node else []))

    def leaders(self, topic: str) -> dict[int, int]:
        """Leader node id per partition, as the cluster reports it now."""
        admin = AdminClient(kafka_login.conf(self.bootstrap))
        parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: meta.leader for p, meta in parts.items()}

    def replicas(self, topic: str) -> dict[int, tuple[list[int], list[int]]]:
        """(replicas, in-sync replicas) per partition."""
        admin = AdminClient(kafka_login.conf(self.bootstrap))
        parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: (list(m.replicas), list(m.isrs)) for p, m in parts.items()}


def private_kafka(
    tmp_path: Path, brokers: int, secured: bool | None = None
) -> Iterator[PrivateKafka]:
    """Start a PrivateKafka in tmp_path, yield it, and kill whatever of it is left (a fixture's
    body: `yield from private_kafka(tmp_path, 3)`)."""
    kafka = PrivateKafka(tmp_path / "var", brokers=brokers, secured=secured)
    try:
        kafka.start()
    except AssertionError as exc:
        kafka.kill9()
        pytest.fail(f"could not start a private Kafka ({brokers} node(s)): {exc}")
    try:
        yield kafka
    finally:
        kafka.kill9()


class Deliveries:
    """What one producer was told about each numbered message: acked, failed or unknown.

    Values are the decimal sequence number, so a reader can tell every message apart. Callbacks
    run on the thread that polls the producer; counters are read from other threads only.
    """

    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}
        self.acked: dict[int, tuple[int, int, float]] = {}
        self.failed: dict[int, str] = {}
        self.unknown_reported: dict[int, str] = {}

    def _report(self, seq: int) -> Any:
        def on_delivery(err: KafkaError | None, msg: Any) -> None:
            outcome = delivery_outcome(err)
            if outcome == "acked":
                self.acked[seq] = (msg.partition(), msg.offset(), time.monotonic())
            elif outcome == "unknown":
                self.unknown_reported[seq] = str(err)
            else:
                self.failed[seq] = str(err)

        return on_delivery

    def produce(self, producer: Producer, topic: str, seq: int, key: bytes | None) -> None:
        """Send message `seq` once; it is never sent again whatever its report says."""
        self.sent_at[seq] = time.monotonic()
        produce_waiting(producer, topic, str(seq).encode(), key, on_delivery=self._report(seq))

    def unknown(self) -> set[int]:
        """Sent, but neither acknowledged nor refused: timed out, or no report yet."""
        return set(self.sent_at) - set(self.acked) - set(self.failed)

    def check(self, read: Iterable[tuple[int, int, bytes | None, bytes]]) -> dict[str, Any]:
        """Compare with what a reader found: lost, duplicates, order, and how the unknown ended."""
        read = list(read)
        seqs = Counter(int(v) for _p, _o, _k, v in read)
        at = {(p, o): int(v) for p, o, _k, v in read}
        lost = [s for s in self.acked if s not in seqs]
        misplaced = [s for s, (p, o, _t) in self.acked.items() if at.get((p, o), s) != s]
        order_violations = 0
        by_partition: dict[int, list[tuple[int, int]]] = {}
        for p, o, _k, v in read:
            by_partition.setdefault(p, []).append((o, int(v)))
        for rows in by_partition.values():
            rows.sort()
            order_violations += sum(1 for a, b in zip(rows, rows[1:], strict=False) if b[1] < a[1])
        unknown = self.unknown()
        return {
            "sent": len(self.sent_at),
            "acked": len(self.acked),
            "failed": len(self.failed),
            "unknown": len(unknown),
            "unknown_written": sum(1 for s in unknown if s in seqs),
            "failed_written": sum(1 for s in self.failed if s in seqs),
            "read": len(read),
            "lost": len(lost),
            "misplaced": len(misplaced),
            "duplicates": sum(c - 1 for c in seqs.values() if c > 1),
            "never_sent_but_read": sum(1 for s in seqs if s not in self.sent_at),
            "order_violations": order_violations,
        }


class Paced:
    """Calls `step(i)` for i in range(n) at `rate` per second, serving `producer` in between;
    `done` (read from other threads) counts the steps taken."""

    def __init__(self, producer: Producer, n: int, rate: float) -> None:
        self.producer = producer
        self.n = n
        self.rate = rate
        self.done = 0

    def run(self, step: Any) -> None:
        """Run every step on this thread."""
        started = time.monotonic()
        for i in range(self.n):
            step(i)
            self.done = i + 1
            self.producer.poll(0)
            time.sleep(max(0.0, started + (i + 1) / self.rate - time.monotonic()))
