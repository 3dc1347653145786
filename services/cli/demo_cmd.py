"""`streamops demo`: the foundation walk-through on the real broker.

Produces generated credit events and one malformed event, runs the shared runner with a
pass-through handler (the scorer takes its place once it lands), reads everything back and shows
the malformed event in the dead-letter topic with its reason. Exit 0 only if every valid event
came through and the malformed one was dead-lettered.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from services.cli.cli_settings import cli_settings
from services.common import serde
from services.common.admin import create_topic, ensure_topics
from services.common.deadletter import DeadLetterWriter
from services.common.errors import StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics
from services.common.runner import Inbound, Outbound, Rejected, Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer

MALFORMED = '{"association_id": "demo-bad-%s", "deployment": "credit", "features": "not a map"}'


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `demo`."""
    p = sub.add_parser("demo", help="run the demo scenario end to end on the local broker")
    p.add_argument("--events", type=int, default=2000, help="events to produce")
    p.add_argument("--keep", action="store_true", help="leave everything running afterwards")
    p.set_defaults(func=run)


class PassThrough:
    """Forwards each decoded event to one topic (stand-in until the scorer lands)."""

    def __init__(self, output: str) -> None:
        self.output = output

    def handle(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """One output per valid input."""
        return [Outbound(self.output, m.key, m.value) for m in batch]


def _step(n: int, text: str) -> None:
    print(f"[{n}/5] {text}", flush=True)


def _read_range(
    conf: dict[str, Any], topic: str, start: dict[int, int], end: dict[int, int]
) -> list[Any]:
    """Every message of `topic` between two offset snapshots."""
    consumer = Consumer(conf)
    todo = {p for p in start if end[p] > start[p]}
    consumer.assign([TopicPartition(topic, p, start[p]) for p in todo])
    out, deadline = [], time.monotonic() + 60
    while todo and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        out.append(msg)
        if msg.offset() + 1 >= end[msg.partition()]:
            todo.discard(msg.partition())
    consumer.close()
    return out


def _committed(conf: dict[str, Any], topic: str, parts: list[int]) -> dict[int, int]:
    consumer = Consumer(conf)
    tps = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def _ends(conf: dict[str, Any], topic: str) -> dict[int, int]:
    """High watermark per partition (waits for a topic created a moment ago to have leaders)."""
    consumer = Consumer(conf)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                if parts:
                    return {
                        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        for p in parts
                    }
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise StreamopsError(f"topic {topic} has no partition leaders after 20 s")
            time.sleep(0.2)
    finally:
        consumer.close()


def _start_group_at_end(conf: dict[str, Any], topic: str, ends: dict[int, int]) -> None:
    """Commit the topic's current end for a new group, so the demo reads only its own events."""
    consumer = Consumer(conf)
    consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False
    )
    consumer.close()


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run the scenario and print a summary table."""
    from services.trainer.dataset import credit_rows

    settings = cli_settings(environ)
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, "streamops-demo")
    run_id = uuid.uuid4().hex[:8]
    relayed = f"{namer.prefix}demo-relayed"

    _step(1, f"topics under {namer.prefix!r}")
    ensure_topics(kafka.admin(), namer)
    try:
        create_topic(kafka.admin(), relayed, 6, {"retention.ms": str(24 * 3600 * 1000)})
    except Exception as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise
    reader = kafka.consumer(f"demo-reader-{run_id}", isolation_level="read_committed")
    start_relayed = _ends(reader, relayed)
    start_dead = _ends(reader, namer.deadletter)
    group = f"demo-relay-{run_id}"
    _start_group_at_end(kafka.consumer(group), namer.events, _ends(reader, namer.events))
    malformed = (MALFORMED % run_id).encode()

    _step(2, f"producing {args.events} credit events and 1 malformed event to {namer.events}")
    producer = Producer(kafka.producer())
    header = [serde.fingerprint_header("FeatureEvent")]
    now = int(time.time() * 1000)
    for i, (features, _label) in enumerate(credit_rows(args.events, seed=11)):
        record = {
            "association_id": f"demo-{run_id}-{i}",
            "deployment": "credit",
            "event_time": now,
            "features": features,
            "attributes": {},
        }
        producer.produce(
            namer.events,
            serde.encode("FeatureEvent", record),
            record["association_id"],
            headers=header,
        )
        producer.poll(0)
    producer.produce(namer.events, malformed, b"demo-bad")
    if producer.flush(30):
        raise StreamopsError(
            "events not acknowledged within 30 s; is Kafka healthy? (`streamops infra status`)"
        )

    _step(3, "running the runner (decode, handle, produce, dead-letter) until caught up")
    stop = threading.Event()
    runner = Runner(
        RunnerConfig(service="demo", topics=(namer.events,)),
        Consumer(kafka.consumer(group)),
        Producer(kafka.producer()),
        TopicDecoder(namer),
        PassThrough(relayed),
        DeadLetterWriter(namer.deadletter, "demo", serde.encode),
        StandardMetrics(CollectorRegistry(), "demo"),
    )
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()

    target = _ends(reader, namer.events)
    group_conf = kafka.consumer(group)
    deadline = time.monotonic() + 120
    while True:
        done = _committed(group_conf, namer.events, list(target))
        behind = sum(max(0, target[p] - done.get(p, 0)) for p in target)
        print(f"\r      {behind} events still to process   ", end="", flush=True)
        if behind == 0:
            print()
            break
        if time.monotonic() > deadline or not thread.is_alive():
            stop.set()
            raise StreamopsError("the runner did not catch up within 120 s; see the log above")
        time.sleep(0.3)
    stop.set()
    thread.join(15)
    elapsed = time.monotonic() - started

    _step(4, "reading back the relayed events and the dead-letter topic")
    mine = [
        m
        for m in _read_range(reader, relayed, start_relayed, _ends(reader, relayed))
        if (m.key() or b"").startswith(f"demo-{run_id}".encode())
    ]
    dead = [
        serde.decode(m.value(), expected="DeadLetter")[1]
        for m in _read_range(reader, namer.deadletter, start_dead, _ends(reader, namer.deadletter))
    ]
    bad = [d for d in dead if d["original"] == malformed]

    _step(5, "summary")
    print(f"  events produced        {args.events} valid + 1 malformed")
    print(f"  relayed (this run)     {len(set(m.key() for m in mine))}")
    print(f"  dead letters (new)     {len(dead)}")
    if bad:
        d = bad[0]
        print(
            f"  malformed event        {d['source_topic']}[{d['source_partition']}]@"
            f"{d['source_offset']} stage={d['stage']} reason={d['reason']}"
        )
        print(f"                         error: {d['error']}")
        print(f"                         original: {json.dumps(d['original'].decode())}")
    print(f"  runner time            {elapsed:.1f} s")
    ok = len(set(m.key() for m in mine)) == args.events and len(bad) == 1
    print("demo: OK" if ok else "demo: FAILED (see the counts above)")
    return 0 if ok else 1
