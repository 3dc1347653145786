"""Drift exits when its group does not give the partitions back (issue 27, R17): `make soak`
found drift reading nothing for minutes after a broker pause, its rejoin lost, the process alive
and idle in consume(). Restarted, it rejoins at once and resumes from the offsets in Redis."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from services.common.errors import FatalError
from tests.fuzz_cases import drift_rig

pytestmark = pytest.mark.unit


class Consumer:
    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def unassign(self) -> None:
        self.assigned = []


def test_revoked_partitions_not_given_back_in_time_end_the_process() -> None:
    loop, consumer = drift_rig([]), Consumer()
    loop.check_rejoined()  # assigned: nothing to check
    loop.on_revoke(consumer, [])
    revoked = loop.revoked_at
    assert revoked is not None and loop.assigned == set()
    loop.check_rejoined(now=revoked + loop.rejoin_limit_s - 1)  # a rebalance in progress
    with pytest.raises(FatalError, match="has not given the partitions back 31 s"):
        loop.check_rejoined(now=revoked + loop.rejoin_limit_s + 1)


def test_a_rebalance_that_ends_in_an_assignment_clears_the_clock() -> None:
    loop, consumer = drift_rig([]), Consumer()
    loop.on_revoke(consumer, [])
    loop.on_assign(consumer, [TopicPartition(loop.events, 0)])
    assert loop.revoked_at is None and consumer.assigned
    loop.check_rejoined(now=10**9)  # long after: still fine
