"""Throughput of the shared runner with a trivial handler, on the real broker.

Pre-fills a fresh events topic with N encoded events, then drains it with the pass-through relay
(decode, forward, commit per batch) and reports events/s. A baseline runs side by side in the
same process and on the same topic: a bare confluent-kafka consume/produce loop with no decoding
and one flush at the end, the ceiling our runner is measured against.

    python -m loadtest.bench_runner --events 200000 --batch-size 1000
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from loadtest.relay import ForwardHandler
from services.common import serde
from services.common.admin import create_topic, ensure_topics
from services.common.deadletter import DeadLetterWriter
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics
from services.common.producing import produce_waiting
from services.common.progress import Progress
from services.common.runner import Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer

RESULTS = Path(__file__).resolve().parent / "results"


def prefill(kafka: KafkaConfig, topic: str, n: int) -> None:
    """Produce n FeatureEvents as fast as the producer allows."""
    producer = Producer(kafka.producer(linger_ms=20))
    progress = Progress(f"pre-filling {topic}", n)
    for i in range(n):
        record = {
            "association_id": f"b{i}",
            "deployment": "bench",
            "event_time": 1_700_000_000_000,
            "features": {"salary": 50_000.0 + i % 1000, "age": 40.0, "car": str(i % 20)},
            "attributes": {},
        }
        produce_waiting(
            producer, topic, serde.encode("FeatureEvent", record), record["association_id"]
        )
        if i % 5000 == 0:
            progress.update(i)
    producer.flush(60)
    progress.update(n)
    progress.done()


def drain_with_runner(
    kafka: KafkaConfig, namer: TopicNamer, output: str, n: int, batch_size: int
) -> float:
    """Seconds for the runner to relay n events (first consume to last commit)."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    runner = Runner(
        RunnerConfig(service="bench", topics=(namer.events,), batch_size=batch_size),
        Consumer(kafka.consumer(group)),
        Producer(kafka.producer()),
        TopicDecoder(namer),
        ForwardHandler(output),
        DeadLetterWriter(namer.deadletter, "bench", serde.encode),
        StandardMetrics(CollectorRegistry(), "bench"),
    )
    stop = threading.Event()
    seen = {"n": 0, "t0": 0.0}
    original = runner.process

    def counting(messages):
        if not seen["t0"]:
            seen["t0"] = time.perf_counter()
        original(messages)
        seen["n"] += len(messages)
        if seen["n"] >= n:
            stop.set()

    runner.process = counting  # type: ignore[method-assign]
    runner.run(stop)
    return time.perf_counter() - seen["t0"]


def drain_baseline(kafka: KafkaConfig, topic: str, output: str, n: int, batch_size: int) -> float:
    """Seconds for a bare consume/produce loop (no decode, no per-batch flush or commit)."""
    consumer = Consumer(kafka.consumer(f"base-{uuid.uuid4().hex[:8]}"))
    producer = Producer(kafka.producer())
    consumer.subscribe([topic])
    done, t0 = 0, 0.0
    while done < n:
        msgs = consumer.consume(batch_size, 1.0)
        if msgs and not t0:
            t0 = time.perf_counter()
        for m in msgs:
            if m.error():
                continue
            while True:
                try:
                    producer.produce(output, m.value(), m.key())
                    break
                except BufferError:
                    producer.poll(0.05)
            done += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run both drains and write loadtest/results/runner.json."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_runner", description=__doc__)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = p.parse_args(argv)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(prefix)
    kafka = KafkaConfig(args.bootstrap, "bench")
    ensure_topics(kafka.admin(), namer, only=["events", "deadletter"])
    for out in ("relayed", "baseline"):
        create_topic(kafka.admin(), prefix + out, 6)
    prefill(kafka, namer.events, args.events)
    print("draining with the streamops runner ...", flush=True)
    runner_s = drain_with_runner(kafka, namer, prefix + "relayed", args.events, args.batch_size)
    print("draining with the bare baseline loop ...", flush=True)
    base_s = drain_baseline(kafka, namer.events, prefix + "baseline", args.events, args.batch_size)
    result = {
        "events": args.events,
        "batch_size": args.batch_size,
        "runner_events_per_s": round(args.events / runner_s),
        "bare_loop_events_per_s": round(args.events / base_s),
        "runner_vs_bare_ratio": round(base_s / runner_s, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runner.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
