"""R6: poison pills land in the dead-letter topic, nothing valid does, no partition stalls."""

from __future__ import annotations

import uuid

import pytest

from services.common import serde
from services.common.admin import create_topic
from tests import kafka_login
from tests.kafka_support import ServiceProcess, make_topics, produce, read_all, wait_caught_up
from tests.poison import EXPECTED_REASON, POISON_KINDS, make_poison

pytestmark = pytest.mark.integration

N_VALID = 5000
EVERY = 200  # one poison pill per 200 valid events (R6 asks 1 per 1,000; denser is stricter)


def test_r6_poison_pills_are_dead_lettered_with_their_original_bytes(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, ["events", "deadletter"])
    output = f"{prefix}relayed"
    create_topic(kafka_login.conf(kafka_bootstrap), output, 6)
    items: list[tuple[str, bytes]] = []
    poison: dict[bytes, str] = {}
    valid: set[str] = set()
    for i in range(N_VALID):
        aid = f"ok-{i}"
        record = {
            "association_id": aid,
            "deployment": "d",
            "event_time": 1_700_000_000_000,
            "features": {"x": float(i)},
            "attributes": {},
        }
        items.append((aid, serde.encode("FeatureEvent", record)))
        valid.add(aid)
        if i % EVERY == EVERY - 1:
            kind = POISON_KINDS[(i // EVERY) % len(POISON_KINDS)]
            pill = make_poison(kind, seed=i)
            poison[pill] = kind
            items.append((f"poison-{i}", pill))
    produce(kafka_bootstrap, namer.events, items)

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
        ],
        tmp_path / "relay.log",
    ).start()
    try:
        wait_caught_up(kafka_bootstrap, group, namer.events, timeout_s=90)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()

    relayed = {key.decode() for _p, _o, key, _v in read_all(kafka_bootstrap, output)}
    dead = [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, namer.deadletter)
    ]
    assert relayed == valid, f"valid events missing from the output: {len(valid - relayed)}"
    originals = {d["original"]: d for d in dead}
    assert set(originals) == set(poison), (
        f"{len(set(poison) - set(originals))} pills missing from deadletter, "
        f"{len(set(originals) - set(poison))} unexpected entries"
    )
    for pill, kind in poison.items():
        d = originals[pill]
        assert d["source_topic"] == namer.events and d["source_offset"] >= 0
        assert d["stage"] == "decode" and d["error"], d
        assert d["reason"] == EXPECTED_REASON[kind], (kind, d["reason"], d["error"])
        assert d["service"] == "relay"
    assert set(poison.values()) == set(POISON_KINDS)
