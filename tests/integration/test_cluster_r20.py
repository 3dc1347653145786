"""R20: a three-node KRaft cluster loses the leader of the busy partitions, then a second node.

A private cluster (tests/broker_support.py: three combined broker+controller nodes, 512 MiB heap
each, on free ports) gets its topics from the project's own topic creation: three replicas,
min.insync.replicas 2. A producer with the project's config (idempotent, acks=all) streams
numbered events while a reader follows the topic. The leader of the busy partitions is killed
-9: nothing acknowledged is lost, and the time until producing and consuming resume on its
partitions is measured (printed, and written to var/artifacts/r20-cluster.json). Then a second
node is killed: with one replica left no write can be acknowledged, so the producer holds its
messages (none acknowledged, none failed) until the two nodes are restarted, and then
everything acknowledged is there exactly once, in order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from tests import kafka_login
from tests.broker_support import Deliveries, Paced, PrivateKafka, private_kafka
from tests.kafka_support import make_topics, read_all

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
N = 16_000
RATE = 800  # per second: a 20 s stream, both kills inside it
TWO_DOWN_S = 8.0
CATCH_UP_S = 60.0  # how long the follower may take to read everything acknowledged


@pytest.fixture()
def cluster(tmp_path) -> Iterator[PrivateKafka]:
    """A three-node cluster of this test's own, killed at the end."""
    yield from private_kafka(tmp_path, brokers=3)


class Follower:
    """Reads every partition of a topic on a thread, noting when each numbered value arrived."""

    def __init__(self, bootstrap: str, topic: str, partitions: list[int]) -> None:
        self.seen: list[tuple[int, int, float]] = []  # (partition, seq, arrival)
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **kafka_login.conf(bootstrap),
                "group.id": f"r20-follower-{topic}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self._thread = threading.Thread(target=self._run, name="r20-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                self.seen.append((msg.partition(), int(msg.value()), time.monotonic()))

    def close(self) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def _min_insync(bootstrap: str, topic: str) -> str:
    """The topic's min.insync.replicas, asked until the answering node knows the new topic.

    describe_configs goes to any one node; right after creation a node other than the controller
    may not have the topic's metadata yet and answers UNKNOWN_TOPIC_OR_PART.
    """
    admin = AdminClient(kafka_login.conf(bootstrap))
    deadline = time.monotonic() + 30
    while True:
        (future,) = admin.describe_configs([ConfigResource("topic", topic)]).values()
        try:
            return future.result()["min.insync.replicas"].value
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_r20_leader_kill_loses_nothing_and_two_down_blocks_without_losing(cluster, prefix):
    topic = make_topics(cluster.bootstrap, prefix, ["events"]).events
    replicas = cluster.replicas(topic)
    assert all(len(r) == 3 and len(isr) == 3 for r, isr in replicas.values()), replicas
    assert _min_insync(cluster.bootstrap, topic) == "2"

    leaders = cluster.leaders(topic)
    victim = leaders[0]
    busy = sorted(p for p, leader in leaders.items() if leader == victim)
    second = next(n for n in (1, 2, 3) if n != victim)
    follower = Follower(cluster.bootstrap, topic, sorted(leaders))
    producer = Producer(kafka_login.kafka_config(cluster.bootstrap, "r20-producer").producer())
    log = Deliveries()
    paced = Paced(producer, N, RATE)
    marks: dict[str, float] = {}
    errors: list[BaseException] = []

    def faults() -> None:
        try:
            _wait(lambda: len(log.acked) >= 0.3 * N, 60, "30% acknowledged")
            cluster.kill9(victim)
            marks["kill_leader"] = time.monotonic()
            _wait(lambda: len(log.acked) >= 0.6 * N, 90, "60% acknowledged")
            cluster.kill9(second)
            marks["kill_second"] = time.monotonic()
            time.sleep(TWO_DOWN_S)
            marks["restart"] = time.monotonic()
            cluster.start()
            marks["restarted"] = time.monotonic()
        except BaseException as exc:  # reported by the test body, not lost on this thread
            errors.append(exc)

    thread = threading.Thread(target=faults, name="r20-faults", daemon=True)
    thread.start()
    try:
        paced.run(lambda i: log.produce(producer, topic, i, f"k{i % 101}".encode()))
        thread.join(240)
        remaining = producer.flush(120)
        # The follower reads on after the last acknowledgement: resuming consumption is measured,
        # not raced against the end of producing.
        deadline = time.monotonic() + CATCH_UP_S
        while len({s for _p, s, _t in follower.seen}) < len(log.acked):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        follower.close()
    assert not errors, errors
    assert set(marks) == {"kill_leader", "kill_second", "restart", "restarted"}, marks

    report = log.check(read_all(cluster.bootstrap, topic))
    k1, k2, restart = marks["kill_leader"], marks["kill_second"], marks["restart"]
    # Producing resumed on the dead leader's partitions: the first acknowledgement there of a
    # message sent after the kill. Consuming resumed: the first such message read back.
    produce_s = min(
        t - k1 for s, (p, _o, t) in log.acked.items() if p in busy and log.sent_at[s] > k1
    )
    resumed = [t - k1 for p, s, t in follower.seen if p in busy and log.sent_at[s] > k1]
    assert resumed, (
        f"the consumer read nothing sent after the leader kill on partitions {busy} within "
        f"{CATCH_UP_S:.0f} s of the last acknowledgement ({len(follower.seen)} read in all)"
    )
    consume_s = min(resumed)
    # With two nodes down: acknowledgements of messages sent once the second kill had landed.
    acked_two_down = sum(
        1 for s, (_p, _o, t) in log.acked.items() if log.sent_at[s] > k2 + 1.0 and t < restart
    )
    after_restart_s = min(t - restart for _p, _o, t in log.acked.values() if t > restart)
    figures = {
        "fault": "R20",
        "events": N,
        "rate_per_s": RATE,
        "killed_leader": victim,
        "busy_partitions": busy,
        "produce_resumed_s": round(produce_s, 2),
        "consume_resumed_s": round(consume_s, 2),
        "two_down_s": TWO_DOWN_S,
        "acked_with_two_down": acked_two_down,
        "restart_to_first_ack_s": round(after_restart_s, 2),
        "restart_two_nodes_s": round(marks["restarted"] - restart, 1),
        **{k: report[k] for k in ("acked", "failed", "unknown", "lost", "duplicates")},
        "order_violations": report["order_violations"],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = REPO / "var" / "artifacts" / "r20-cluster.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"R20: {json.dumps(figures)}")

    assert remaining == 0, f"{remaining} not delivered after the restart"
    assert report["lost"] == 0, report
    assert report["misplaced"] == 0, report
    assert report["duplicates"] == 0, report
    assert report["order_violations"] == 0, report
    assert report["failed"] == 0, f"refused instead of held: {list(log.failed.values())[:3]}"
    assert report["acked"] == N, report
    assert acked_two_down == 0, "a write was acknowledged with one replica left (min ISR 2)"
    assert produce_s < 30, figures
