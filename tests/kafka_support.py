"""Test helpers for the real broker: topics, producing, reading back, and service processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from services.common.admin import ensure_topics
from services.common.producing import produce_waiting
from services.common.topics import TopicNamer
from tests import kafka_login

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_topics(bootstrap: str, prefix: str, logical: list[str]) -> TopicNamer:
    """Create the given logical topics under a unique prefix."""
    namer = TopicNamer(prefix)
    ensure_topics(kafka_login.conf(bootstrap), namer, only=logical)
    return namer


def produce(bootstrap: str, topic: str, items: Iterable[tuple[bytes | str | None, bytes]]) -> int:
    """Produce (key, value) pairs and wait until every one is acknowledged."""
    producer = Producer({**kafka_login.conf(bootstrap), "enable.idempotence": True, "linger.ms": 5})
    failures: list[str] = []
    n = 0
    for key, value in items:
        produce_waiting(
            producer,
            topic,
            value,
            key,
            on_delivery=lambda e, m: e and failures.append(str(e)),
            wait_s=0.1,
        )
        n += 1
    assert producer.flush(30) == 0, "test input not acknowledged within 30 s"
    assert not failures, failures[:3]
    return n


def read_all(
    bootstrap: str, topic: str, idle_s: float = 2.0, timeout_s: float = 60.0
) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every committed message of a topic as (partition, offset, key, value), read to the end."""
    consumer = Consumer(
        {
            **kafka_login.conf(bootstrap),
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = list(meta.partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: list[tuple[int, int, bytes | None, bytes]] = []
    at_eof: set[int] = set()
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            if len(at_eof) == len(parts) and time.monotonic() - last > idle_s:
                break
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_eof.add(msg.partition())
            continue
        at_eof.discard(msg.partition())
        last = time.monotonic()
        out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    consumer.close()
    return out


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark per partition."""
    consumer = Consumer({**kafka_login.conf(bootstrap), "group.id": "test-watermarks"})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    marks = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in meta.partitions
    }
    consumer.close()
    return marks


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none).

    read_uncommitted: otherwise librdkafka asks for stable offsets only, and the broker keeps
    answering "unstable" while a transactional member has offsets pending in an open
    transaction, which for a busy exactly-once scorer is nearly always (a timeout, not an answer).
    """
    consumer = Consumer(
        {**kafka_login.conf(bootstrap), "group.id": group, "isolation.level": "read_uncommitted"}
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    tps = consumer.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
    consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def wait_caught_up(bootstrap: str, group: str, topic: str, timeout_s: float = 90.0) -> None:
    """Wait until the group has committed every partition up to its end."""
    ends = end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = committed(bootstrap, group, topic)
        if all(end == 0 or done.get(p, -1) >= end for p, end in ends.items()):
            return
        time.sleep(0.3)
    raise AssertionError(
        f"group {group} did not catch up on {topic}: "
        f"committed {committed(bootstrap, group, topic)}, ends {ends}"
    )


def count(bootstrap: str, topic: str) -> int:
    """Messages in a topic (sum of high watermarks; exact for non-transactional topics)."""
    return sum(end_offsets(bootstrap, topic).values())


class ServiceProcess:
    """A Python module run as a child process, for kill -9 and SIGTERM tests."""

    def __init__(
        self, module: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.module = module
        self.args = args
        self.log_path = log_path
        self.env = env or {}  # added to this process's environment (secrets go here, not argv)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start the process, logging to log_path (appended)."""
        # A service logs in as itself on the broker its flags name (tests/kafka_login.py).
        # A tool of ours (loadtest.relay, --bootstrap) logs in as admin.
        login = {}
        for flag in ("--kafka-bootstrap", "--bootstrap"):
            if flag in self.args:
                bootstrap = self.args[self.args.index(flag) + 1]
                service = (
                    self.module.split(".")[1] if self.module.startswith("services.") else "cli"
                )
                login = kafka_login.service_env(bootstrap, service)
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **login, **self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 (lives as long as the child)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill9(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 15.0) -> tuple[int, float]:
        """SIGTERM and wait; returns (exit code, seconds to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        return code, time.monotonic() - started

    def wait_for_log(self, text: str, timeout_s: float = 60.0) -> None:
        """Wait until the child's log holds `text`; fails if it exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if not self.alive():
                raise AssertionError(f"exited before logging {text!r}:\n" + self.log_tail())
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in the log within {timeout_s} s:\n" + self.log_tail())

    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the child's log, for assertion messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
