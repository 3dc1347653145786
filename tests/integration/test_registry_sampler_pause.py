"""The registry's tail sampler after a broker pause (issue 27). `make soak` found every round
failing with `_UNKNOWN_PARTITION` ("Failed to get watermark offsets") for minutes after a 10 s
SIGSTOP of a loaded broker, until the registry was restarted: the dashboard's live figures froze.
That stuck state did not reproduce on an idle private broker (10 and 20 s pauses); the sampler
now replaces a consumer after failed rounds in a row (unit-tested with a consumer that stays
stuck, tests/unit/test_registry_sampler.py), and this test checks the pause path end to end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from services.common.admin import ensure_topics
from services.common.topics import TopicNamer
from services.registry.live import LiveStats
from services.registry.sampler import SAMPLED, TailSampler
from tests import kafka_login
from tests.broker_support import PrivateKafka, private_kafka

pytestmark = pytest.mark.integration

PAUSE_S = 10.0


@pytest.fixture
def kafka(tmp_path: Path):
    yield from private_kafka(tmp_path, 1)


def _pid(kafka: PrivateKafka) -> int:
    return int((kafka.var_dir / "kafka" / "kafka.pid").read_text().strip())


def test_the_sampler_reads_again_after_the_broker_was_paused(kafka: PrivateKafka) -> None:
    namer = TopicNamer("p.")
    ensure_topics(kafka_login.conf(kafka.bootstrap), namer, only=list(SAMPLED))
    producer = Producer(kafka_login.conf(kafka.bootstrap))

    def produce(n: int) -> None:
        for i in range(n):
            producer.produce(namer.events, b"not avro %d" % i)
        assert producer.flush(30) == 0

    live = LiveStats()
    sampler = TailSampler(
        {**kafka_login.conf(kafka.bootstrap), "group.id": "sampler-test"},
        namer, live, set, per_partition=50, interval_s=0.5,
    ).start()  # fmt: skip
    try:
        produce(20)
        deadline = time.monotonic() + 30
        while live.rounds < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert live.rounds >= 3, "the sampler never completed a round before the pause"

        os.kill(_pid(kafka), signal.SIGSTOP)
        try:
            time.sleep(PAUSE_S)
        finally:
            os.kill(_pid(kafka), signal.SIGCONT)
        produce(20)
        resumed, before = time.monotonic(), live.rounds
        while live.rounds < before + 3 and time.monotonic() - resumed < 60:
            time.sleep(0.5)
        print(f"\nsampler: {live.rounds - before} rounds within "
              f"{time.monotonic() - resumed:.1f} s of the broker resuming")  # fmt: skip
        assert live.rounds >= before + 3, "sampling rounds still failing 60 s after the pause"
        assert sampler.alive()
    finally:
        sampler.stop()
