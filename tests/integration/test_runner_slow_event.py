"""R5: one event whose handling outlasts max.poll.interval.ms.

The consumer is evicted, rejoins, and the batch comes back; the runner replays suspects one by
one, and the event that stays too slow is dead-lettered (reason timeout) after at most three
attempts. No infinite redelivery, and every other event is relayed.
"""

from __future__ import annotations

import uuid

import pytest

from services.common import serde
from services.common.admin import create_topic
from tests import kafka_login
from tests.kafka_support import ServiceProcess, make_topics, produce, read_all, wait_caught_up

pytestmark = pytest.mark.integration


def test_r5_a_too_slow_event_is_retried_at_most_3_times_then_dead_lettered(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, ["events", "deadletter"])
    output = f"{prefix}relayed"
    create_topic(kafka_login.conf(kafka_bootstrap), output, 6)
    ids = [f"e{i}" for i in range(300)]
    produce(
        kafka_bootstrap,
        namer.events,
        [
            (
                aid,
                serde.encode(
                    "FeatureEvent",
                    {
                        "association_id": aid,
                        "deployment": "d",
                        "event_time": 1,
                        "features": {"x": 1.0},
                        "attributes": {},
                    },
                ),
            )
            for aid in ids
        ],
    )
    group = f"g-{uuid.uuid4().hex[:8]}"
    proc = ServiceProcess(
        "loadtest.relay",
        [
            "--prefix",
            prefix,
            "--output",
            output,
            "--group",
            group,
            "--bootstrap",
            kafka_bootstrap,
            "--slow-key",
            "e150",
            "--slow-ms",
            "7500",
            "--max-poll-interval-ms",
            "6000",
        ],
        tmp_path / "relay.log",
    ).start()
    try:
        wait_caught_up(kafka_bootstrap, group, namer.events, timeout_s=150)
    finally:
        code, _ = proc.terminate(timeout_s=20)
    assert code == 0, proc.log_tail()
    relayed = {k.decode() for _p, _o, k, _v in read_all(kafka_bootstrap, output)}
    assert relayed >= set(ids) - {"e150"}
    dead = [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, namer.deadletter)
    ]
    assert [(d["source_key"], d["reason"]) for d in dead] == [(b"e150", "timeout")]
    log = proc.log_path.read_text()
    assert 1 <= log.count("took") <= 3, proc.log_tail(40)
