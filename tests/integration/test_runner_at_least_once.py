"""R3: the runner at least once under kill -9, and its negative control.

The relay (loadtest/relay.py, the shared runner with a pass-through handler) runs as a child
process; it is killed with SIGKILL three times, each after at least 20% of the input has been
processed since its (re)start, then allowed to finish. The checker compares input and output ids:
0 lost, duplicates <= kills x batch. The negative-control build commits offsets before its
outputs are flushed; the same checker must report it as losing messages, which proves the check
can fail.
"""

from __future__ import annotations

import time
import uuid

import pytest

from services.common import serde
from services.common.admin import create_topic
from tests import kafka_login
from tests.kafka_support import (
    ServiceProcess,
    count,
    make_topics,
    produce,
    read_all,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

N = 6000
BATCH = 200
KILLS = 3


def check_delivery(inputs: set[str], outputs: list[str], max_duplicates: int) -> list[str]:
    """Problems found comparing input ids with output ids (empty list = guarantee held)."""
    problems = []
    lost = inputs - set(outputs)
    duplicates = len(outputs) - len(set(outputs))
    extra = set(outputs) - inputs
    if lost:
        problems.append(f"lost {len(lost)} (e.g. {sorted(lost)[:3]})")
    if duplicates > max_duplicates:
        problems.append(f"duplicates {duplicates} > {max_duplicates}")
    if extra:
        problems.append(f"{len(extra)} outputs that were never inputs")
    return problems


def _events(prefix: str) -> list[tuple[str, bytes]]:
    items = []
    for i in range(N):
        aid = f"{prefix}{i}"
        record = {
            "association_id": aid,
            "deployment": "d",
            "event_time": 1_700_000_000_000 + i,
            "features": {"x": float(i), "c": "a"},
            "attributes": {},
        }
        items.append((aid, serde.encode("FeatureEvent", record)))
    return items


def _run_with_kills(
    bootstrap: str, prefix: str, tmp_path, unsafe: bool, interval_ms: int = 0
) -> tuple[set, list, int]:
    namer = make_topics(bootstrap, prefix, ["events", "deadletter"])
    output = f"{prefix}relayed"
    create_topic(kafka_login.conf(bootstrap), output, 6)
    items = _events(prefix)
    produce(bootstrap, namer.events, items)
    group = f"g-{uuid.uuid4().hex[:8]}"
    args = [
        "--prefix",
        prefix,
        "--output",
        output,
        "--group",
        group,
        "--batch-size",
        str(BATCH),
        "--pause-ms",
        "60" if unsafe else "20",
        "--bootstrap",
        bootstrap,
        "--commit-interval-ms",
        str(interval_ms),
    ]
    if unsafe:
        args.append("--unsafe-commit-first")
    proc = ServiceProcess("loadtest.relay", args, tmp_path / "relay.log")
    kills = 0
    for _ in range(KILLS):
        base = count(bootstrap, output)
        proc.start()
        deadline = time.monotonic() + 60
        while count(bootstrap, output) - base < 0.2 * N:
            assert proc.alive(), f"relay died on its own:\n{proc.log_tail()}"
            assert time.monotonic() < deadline, f"no progress:\n{proc.log_tail()}"
            time.sleep(0.05)
        proc.kill9()
        kills += 1
    proc.start()
    try:
        wait_caught_up(bootstrap, group, namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, f"relay exited {code}:\n{proc.log_tail()}"
    outputs = [key.decode() for _p, _o, key, _v in read_all(bootstrap, output)]
    return {aid for aid, _ in items}, outputs, kills


@pytest.mark.parametrize("interval_ms", [0, 100], ids=["commit-per-batch", "commit-interval"])
def test_r3_kill9_mid_batch_loses_nothing_and_duplicates_are_bounded(
    kafka_bootstrap, prefix, tmp_path, interval_ms
):
    """Per batch: flush and commit each batch. With an interval (the scorer's way): outputs
    flushed and offsets committed without waiting, every 100 ms; a kill replays what was
    delivered since the last commit that landed, at most an interval's batches and the one
    being handled (the relay pauses 20 ms per batch)."""
    inputs, outputs, kills = _run_with_kills(
        kafka_bootstrap, prefix, tmp_path, unsafe=False, interval_ms=interval_ms
    )
    per_kill = BATCH * (1 + interval_ms // 20 + 1) if interval_ms else BATCH
    problems = check_delivery(inputs, outputs, max_duplicates=kills * per_kill)
    assert kills == KILLS
    assert problems == [], problems
    print(
        f"R3 ({interval_ms} ms): {len(inputs)} in, {len(outputs)} out, "
        f"{len(outputs) - len(set(outputs))} duplicates after {kills} kills"
    )


def test_r3_negative_control_commit_before_flush_fails_the_checker(
    kafka_bootstrap, prefix, tmp_path
):
    inputs, outputs, kills = _run_with_kills(kafka_bootstrap, prefix, tmp_path, unsafe=True)
    problems = check_delivery(inputs, outputs, max_duplicates=kills * BATCH)
    assert any(p.startswith("lost") for p in problems), (
        "the commit-before-flush build lost nothing: the R3 check cannot tell safe from unsafe"
    )
