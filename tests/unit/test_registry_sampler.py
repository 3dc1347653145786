"""The registry's tail sampler replaces a consumer whose rounds keep failing (issue 27: found by
`make soak`, watermark queries failed with "Local: Unknown partition" for minutes after a broker
pause, until the registry was restarted)."""

from __future__ import annotations

import types

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common.topics import TopicNamer
from services.registry.live import LiveStats
from services.registry.sampler import REPLACE_AFTER, TailSampler

pytestmark = pytest.mark.unit


class FakeConsumer:
    """Metadata for any topic (one partition); watermarks fail while `broken`."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.closed = False

    def list_topics(self, topic, timeout):
        meta = types.SimpleNamespace(error=None, partitions={0: None})
        return types.SimpleNamespace(topics={topic: meta})

    def get_watermark_offsets(self, tp, timeout):
        if self.broken:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return (0, 0)

    def assign(self, partitions): ...

    def consume(self, n, timeout):
        return []

    def unassign(self): ...

    def close(self) -> None:
        self.closed = True


def test_a_consumer_stuck_on_unknown_partitions_is_replaced_and_sampling_resumes() -> None:
    made: list[FakeConsumer] = []

    def factory(conf):
        made.append(FakeConsumer(broken=not made))  # the first one stays broken for good
        return made[-1]

    live = LiveStats()
    sampler = TailSampler({}, TopicNamer("p."), live, set, 10, 1.0, consumer_factory=factory)
    results = [sampler.round() for _ in range(REPLACE_AFTER)]
    assert results == [False] * REPLACE_AFTER and live.rounds == 0
    assert len(made) == 2 and made[0].closed and sampler.replaced == 1
    assert sampler.round() is True and live.rounds == 1


def test_a_single_failed_round_does_not_replace_the_consumer() -> None:
    made: list[FakeConsumer] = []

    def factory(conf):
        made.append(FakeConsumer(broken=True))
        return made[-1]

    sampler = TailSampler({}, TopicNamer("p."), LiveStats(), set, 10, 1.0, consumer_factory=factory)
    assert sampler.round() is False
    made[0].broken = False  # the broker answers again
    for _ in range(REPLACE_AFTER):
        assert sampler.round() is True
    assert len(made) == 1 and sampler.replaced == 0
