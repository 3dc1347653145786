"""R4 at the runner: a member joining while another has a batch in flight duplicates nothing.

Member A owns both partitions and has taken a batch from each (its messages are in its hands,
not yet handled) when member B joins. The cooperative rebalance revokes one partition from A
while A is still filling that batch; B starts the partition from the last committed offset. If
A went on to handle the revoked partition's messages, both members would answer them. Every
input must be answered exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from services.common.admin import create_topic
from services.common.deadletter import DeadLetterWriter
from services.common.metrics import StandardMetrics
from services.common.runner import Inbound, Outbound, Runner, RunnerConfig
from tests import kafka_login
from tests.kafka_support import committed, read_all, wait_caught_up

pytestmark = pytest.mark.integration

PER_PARTITION = 10


class Forward:
    """Answers every input with one output keyed by the input's value."""

    def __init__(self, output: str) -> None:
        self.output = output

    def handle(self, batch: list[Inbound]) -> list[Outbound]:
        """One output per input."""
        return [Outbound(self.output, m.value, m.value) for m in batch]


class BatchInFlight:
    """A consumer whose first batch holds messages of every partition; then it is the real one.

    `in_flight` is set when that batch has been handed to the runner, so the test can make a
    member join while the runner is still filling the batch (its next consume call).
    """

    def __init__(self, consumer: Consumer, partitions: int) -> None:
        self._consumer = consumer
        self._partitions = partitions
        self.in_flight = threading.Event()

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list:
        """The first batch once it spans every partition; afterwards the real consumer's."""
        if self.in_flight.is_set():
            return self._consumer.consume(num_messages=num_messages, timeout=timeout)
        taken: list = []
        deadline = time.monotonic() + 30
        while len({m.partition() for m in taken if m.error() is None}) < self._partitions:
            assert time.monotonic() < deadline, "the first member never got both partitions"
            taken += self._consumer.consume(num_messages=num_messages, timeout=0.2)
        self.in_flight.set()
        return taken

    def __getattr__(self, name: str):
        return getattr(self._consumer, name)


def _member(bootstrap: str, name: str, topic: str, output: str, consumer, fill_s: float):
    conf = RunnerConfig(service=name, topics=(topic,), batch_size=1000, max_wait_s=fill_s)
    return Runner(
        conf,
        consumer,
        Producer(kafka_login.kafka_config(bootstrap, name).producer()),
        lambda _topic, value: ("Raw", {"value": value}),
        Forward(output),
        DeadLetterWriter(f"{output}.dl", name, lambda _name, rec: repr(rec).encode()),
        StandardMetrics(CollectorRegistry(), name),
    )


def _consumer(bootstrap: str, group: str, name: str) -> Consumer:
    # Short heartbeats: the members notice the join quickly, well inside A's filling wait.
    return Consumer(
        kafka_login.kafka_config(bootstrap, name).consumer(
            group, heartbeat_interval_ms=300, session_timeout_ms=6000
        )
    )


def test_a_member_joining_while_a_batch_is_in_flight_duplicates_nothing(kafka_bootstrap):
    prefix = f"rrc{uuid.uuid4().hex[:8]}."
    topic, output = f"{prefix}in", f"{prefix}out"
    admin = kafka_login.conf(kafka_bootstrap)
    create_topic(admin, topic, 2)
    create_topic(admin, output, 1)
    create_topic(admin, f"{output}.dl", 1)
    producer = Producer({**kafka_login.conf(kafka_bootstrap), "enable.idempotence": True})
    inputs = []
    for p in range(2):
        for i in range(PER_PARTITION):
            value = f"{prefix}p{p}-{i}".encode()
            producer.produce(topic, value, partition=p)
            inputs.append(value)
    assert producer.flush(30) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"

    gated = BatchInFlight(_consumer(kafka_bootstrap, group, "a"), 2)
    # A waits up to 8 s to fill its batch: the join happens during that wait.
    a = _member(kafka_bootstrap, "a", topic, output, gated, fill_s=8.0)
    b = _member(kafka_bootstrap, "b", topic, output, _consumer(kafka_bootstrap, group, "b"), 0.05)
    stop_a, stop_b = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=a.run, args=(stop_a,), daemon=True),
        threading.Thread(target=b.run, args=(stop_b,), daemon=True),
    ]
    threads[0].start()
    try:
        assert gated.in_flight.wait(30), "member A never took its first batch"
        threads[1].start()  # B joins while A fills the batch
        wait_caught_up(kafka_bootstrap, group, topic, timeout_s=60)
    finally:
        stop_a.set()
        stop_b.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "a member did not stop"
    assert committed(kafka_bootstrap, group, topic) == {0: PER_PARTITION, 1: PER_PARTITION}
    answers = Counter(k for _p, _o, k, _v in read_all(kafka_bootstrap, output))
    assert set(answers) == set(inputs), f"lost {sorted(set(inputs) - set(answers))[:3]}"
    twice = sorted(k for k, n in answers.items() if n > 1)
    assert not twice, f"{len(twice)} inputs answered twice, e.g. {twice[:3]}"
