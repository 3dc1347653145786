"""The shared runner with the real TopicDecoder: hostile input is dead-lettered, never fatal.

In-memory stand-ins for the Kafka clients (``tests/fuzz_cases.py``), as in
``test_runner_logic.py``: ordering and routing only; delivery is proven on the real broker.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from services.common import serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import FatalError, Reason
from services.common.messages import Inbound, Outbound
from services.common.metrics import StandardMetrics
from services.common.runner import Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from tests.drift_support import T0, event
from tests.fuzz_cases import (
    HOSTILE_ACTUALS,
    HOSTILE_EVENTS,
    FakeMessage,
    MemoryLog,
    MemoryProducer,
    far_future_event,
)

pytestmark = pytest.mark.unit

NAMER = TopicNamer("hostile.")
VALID = serde.encode("FeatureEvent", event("d", 1, T0, {"x": 1.0}))


class Echo:
    """A handler that answers each record with its association id."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, batch: list[Inbound]) -> list[Outbound]:
        self.seen += [m.record["association_id"] for m in batch]
        return [Outbound("out", m.key, m.record["association_id"].encode()) for m in batch]


def runner(decoder=None):
    registry = CollectorRegistry()
    producer, handler = MemoryProducer(), Echo()
    r = Runner(
        RunnerConfig(service="t", topics=(NAMER.events, NAMER.actuals)),
        MemoryLog(),
        producer,
        decoder or TopicDecoder(NAMER),
        handler,
        DeadLetterWriter(NAMER.deadletter, "t", serde.encode),
        StandardMetrics(registry, "t"),
    )
    return r, producer, handler, registry


def dead_letters(producer: MemoryProducer) -> list[dict]:
    return [
        serde.decode(v, expected="DeadLetter")[1]
        for t, _k, v in producer.sent
        if t == NAMER.deadletter
    ]


def hostile_then_valid(topic: str, data: bytes) -> list[FakeMessage]:
    return [FakeMessage(topic, 0, 7, b"k", data), FakeMessage(NAMER.events, 0, 8, b"k", VALID)]


@pytest.mark.parametrize(
    ("topic", "name"),
    [("events", n) for n in sorted(HOSTILE_EVENTS)] + [("actuals", n) for n in HOSTILE_ACTUALS],
)
def test_each_hostile_input_is_dead_lettered_and_the_next_message_handled(topic, name):
    cases = HOSTILE_EVENTS if topic == "events" else HOSTILE_ACTUALS
    data, reason = cases[name]
    r, producer, handler, _registry = runner()
    positions = r.work(hostile_then_valid(getattr(NAMER, topic), data))
    [dl] = dead_letters(producer)
    assert (dl["original"], dl["reason"], dl["stage"]) == (data, reason.value, "decode")
    assert (dl["source_topic"], dl["source_offset"]) == (getattr(NAMER, topic), 7)
    assert handler.seen == ["a1"]
    assert positions[(NAMER.events, 0)][1] == 8


def test_the_runner_has_no_opinion_on_future_times():
    """Bounding event times is the drift service's rule (it keeps the watermark)."""
    r, producer, handler, _ = runner()
    r.work([FakeMessage(NAMER.events, 0, 1, b"k", far_future_event())])
    assert handler.seen == ["future"] and dead_letters(producer) == []


def test_an_unexpected_decoder_exception_dead_letters_the_record_and_counts_it():
    real = TopicDecoder(NAMER)

    def decoder(topic, value):
        if value == b"boom":
            raise RecursionError("maximum recursion depth exceeded")
        return real(topic, value)

    r, producer, handler, registry = runner(decoder)
    r.work(hostile_then_valid(NAMER.events, b"boom"))
    [dl] = dead_letters(producer)
    assert dl["reason"] == Reason.DECODE_FAILED.value and dl["original"] == b"boom"
    assert dl["error"] == "RecursionError('maximum recursion depth exceeded')"
    assert handler.seen == ["a1"]
    labels = {"service": "t", "category": "decode"}
    assert registry.get_sample_value("streamops_errors_total", labels) == 1
    reason = {"service": "t", "topic": NAMER.events, "reason": "decode_failed"}
    assert registry.get_sample_value("streamops_deadletter_total", reason) == 1


@pytest.mark.parametrize(
    "error",
    [FatalError("credentials gone"), KafkaException(KafkaError(KafkaError._TRANSPORT))],
)
def test_broker_and_fatal_errors_from_the_decoder_still_stop_the_loop(error):
    def decoder(topic, value):
        raise error

    r, producer, handler, _ = runner(decoder)
    with pytest.raises(type(error)):
        r.work(hostile_then_valid(NAMER.events, b"x"))
    assert dead_letters(producer) == [] and handler.seen == []
