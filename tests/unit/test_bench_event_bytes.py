"""The scorer benchmark's paced producer: events encoded ahead, bytes equal to serde's."""

from __future__ import annotations

import pytest

from loadtest.bench_scorer import EventBytes
from services.common import serde
from services.trainer.credit import credit_rows

pytestmark = pytest.mark.unit

ROWS = [f for f, _ in credit_rows(50, seed=99)]


@pytest.mark.parametrize(
    ("i", "aid", "event_time"),
    [
        (0, "lat-0", 1_796_000_000_123),
        (49, "lat-49", 1_796_000_000_999),
        (50, "x" * 200, 0),  # cycles to row 0; an id whose length takes two varint bytes
        (7, "e", 5),
    ],
)
def test_a_message_is_what_serde_encodes_for_the_same_event(i, aid, event_time):
    record = {
        "association_id": aid,
        "deployment": "credit",
        "event_time": event_time,
        "features": ROWS[i % len(ROWS)],
        "attributes": {},
    }
    message = EventBytes(ROWS).message(i, aid, event_time)
    assert message == serde.encode("FeatureEvent", record)
    assert serde.decode(message, expected="FeatureEvent") == ("FeatureEvent", record)


def test_another_deployment_is_written_in_its_place():
    message = EventBytes(ROWS, deployment="fraud-v2").message(3, "a", 17)
    _, record = serde.decode(message, expected="FeatureEvent")
    assert (record["deployment"], record["association_id"], record["event_time"]) == (
        "fraud-v2",
        "a",
        17,
    )
    assert record["features"] == ROWS[3]
