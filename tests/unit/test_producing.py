"""produce_waiting serves delivery reports while the local queue is full, then produces."""

from __future__ import annotations

import pytest

from services.common.producing import produce_waiting

pytestmark = pytest.mark.unit


class FullThenFree:
    def __init__(self, full_for: int) -> None:
        self.full_for, self.calls = full_for, []

    def produce(self, topic, value, key, headers=None, on_delivery=None):
        self.calls.append(("produce", topic, value, key, headers, on_delivery))
        if self.full_for:
            self.full_for -= 1
            raise BufferError("queue full")

    def poll(self, timeout):
        self.calls.append(("poll", timeout))


def test_a_full_queue_is_served_until_the_message_fits():
    producer = FullThenFree(full_for=2)
    produce_waiting(producer, "t", b"v", "k", headers=[("h", b"1")], wait_s=0.1)
    assert [c[0] for c in producer.calls] == ["produce", "poll", "produce", "poll", "produce"]
    assert producer.calls[1] == ("poll", 0.1)
    assert producer.calls[-1] == ("produce", "t", b"v", "k", [("h", b"1")], None)
