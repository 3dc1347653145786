"""A pass-through service on the shared runner: decode events, forward them, dead-letter poison.

Used to measure the runner's throughput with a trivial handler, the latency floor under the
scorer's (`--like-scorer`: the scorer's batching, linger, delivery reports and commit interval;
see `bench_scorer`), and, as a separate process that tests kill -9, to prove the delivery
guarantees (R3, R6, R16). `--unsafe-commit-first` builds the
negative control: it commits offsets *before* the outputs are flushed, which loses messages when
killed, and the R3 checker must catch it.

    python -m loadtest.relay --prefix t1. --output t1.relayed --group g1
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from services.common import serde
from services.common.deadletter import DeadLetterWriter
from services.common.kafka_config import KafkaConfig
from services.common.lifecycle import catch_stop_signals, run_service
from services.common.metrics import StandardMetrics
from services.common.runner import Inbound, Outbound, Rejected, Runner, RunnerConfig
from services.common.settings import CommonSettings, load_settings
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from services.scorer.config import ScorerSettings


class ForwardHandler:
    """Forwards every decoded event, re-encoded, to one output topic."""

    def __init__(
        self, output: str, pause_s: float = 0.0, slow_key: bytes | None = None, slow_s: float = 0.0
    ) -> None:
        self.output = output
        self.pause_s = pause_s
        self.slow_key = slow_key
        self.slow_s = slow_s

    def handle(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """One output per input, keyed like the input."""
        if self.pause_s:
            time.sleep(self.pause_s)  # widens the mid-batch window crash tests aim at
        if self.slow_key is not None and any(m.key == self.slow_key for m in batch):
            time.sleep(self.slow_s)  # one event slower than max.poll.interval.ms (R5)
        return [Outbound(self.output, m.key, m.value) for m in batch]


class CommitBeforeFlushRunner(Runner):
    """NEGATIVE CONTROL ONLY: commits the batch's offsets before its outputs are delivered."""

    def process(self, messages: list[Any]) -> None:
        """Commit first, then do the work: a crash in between loses the batch."""
        good = [m for m in messages if m.error() is None]
        if good:
            last: dict[tuple[str, int], int] = {}
            for m in good:
                last[(m.topic(), m.partition())] = m.offset()
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()],
                asynchronous=False,
            )
        super().process(messages)


def build(settings: CommonSettings, args: argparse.Namespace) -> Runner:
    """Wire a relay runner from settings and flags."""
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, "relay", principal="admin")  # a test tool
    overrides = {}
    if args.max_poll_interval_ms:
        overrides = {
            "max_poll_interval_ms": args.max_poll_interval_ms,
            "session_timeout_ms": min(args.max_poll_interval_ms, 10000),
        }
    consumer = Consumer(kafka.consumer(args.group, **overrides))
    like = ScorerSettings if args.like_scorer else None
    producer = Producer(
        kafka.producer(delivery_report_only_error=True, linger_ms=like.linger_ms)
        if like
        else kafka.producer()
    )
    metrics = StandardMetrics(CollectorRegistry(), "relay")
    config = RunnerConfig(
        service="relay",
        topics=(namer.events,),
        batch_size=args.batch_size,
        max_wait_s=like.max_wait_ms / 1000 if like else RunnerConfig.max_wait_s,
        commit_interval_s=(like.commit_interval_ms if like else args.commit_interval_ms) / 1000,
        max_handle_s=0.8 * (args.max_poll_interval_ms or 300_000) / 1000,
    )
    cls = CommitBeforeFlushRunner if args.unsafe_commit_first else Runner
    return cls(
        config,
        consumer,
        producer,
        TopicDecoder(namer),
        ForwardHandler(
            args.output,
            args.pause_ms / 1000,
            args.slow_key.encode() if args.slow_key else None,
            args.slow_ms / 1000,
        ),
        DeadLetterWriter(namer.deadletter, "relay", serde.encode),
        metrics,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run the relay until SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m loadtest.relay", description=__doc__)
    p.add_argument("--prefix", required=True, help="topic prefix of the input events topic")
    p.add_argument("--output", required=True, help="physical output topic")
    p.add_argument("--group", required=True)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--pause-ms", type=float, default=0.0)
    p.add_argument(
        "--commit-interval-ms",
        type=float,
        default=0.0,
        help="0: flush and commit each batch; else flush and commit (asynchronously) this often",
    )
    p.add_argument(
        "--like-scorer",
        action="store_true",
        help="the scorer's default batch wait, linger, delivery reports and commit interval "
        "(instead of --commit-interval-ms)",
    )
    p.add_argument("--unsafe-commit-first", action="store_true")
    p.add_argument("--slow-key", help="sleep --slow-ms whenever a batch holds this key")
    p.add_argument("--slow-ms", type=float, default=0.0)
    p.add_argument("--max-poll-interval-ms", type=int, default=0)
    p.add_argument("--bootstrap", default=None)
    args = p.parse_args(argv)
    settings = load_settings(
        CommonSettings,
        "relay",
        os.environ,
        {"topic_prefix": args.prefix, "kafka_bootstrap": args.bootstrap},
    )

    def run(s: CommonSettings, stop: threading.Event) -> None:
        build(s, args).run(stop)

    return run_service(run, settings, catch_stop_signals())


if __name__ == "__main__":
    sys.exit(main())
