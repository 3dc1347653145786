"""R8: twenty model versions at one per second while the scorer is under load.

Odd versions are deployed (approved); even versions are only published. Every prediction must be
tagged with a deployed version, none may come from an unapproved one, no event may be lost, and
the scorer's memory must stay bounded while sessions are swapped and released.
"""

from __future__ import annotations

import threading
import time

import pytest

from services.common import serde
from tests.kafka_support import read_all, wait_caught_up
from tests.model_factory import credit_content, deployment, published
from tests.scorer_support import rss_mb, variant, world

pytestmark = pytest.mark.integration

VERSIONS = 20
RATE = 400  # events per second while swapping


def test_r8_hot_swap_under_load_serves_only_approved_versions(kafka_bootstrap, prefix, tmp_path):
    w = world(kafka_bootstrap, prefix, tmp_path)
    base = credit_content(1)
    records = {
        v: published(base, w.key, version=v, onnx=variant(base["onnx"], v))
        for v in range(1, VERSIONS + 1)
    }
    w.publish(records[1])
    w.deploy(deployment(records[1]["content"], revision=1))
    group = f"{prefix}scorer"
    proc = w.scorer(group=group).start()

    stop = threading.Event()
    produced: list[str] = []

    def load() -> None:
        i = 0
        while not stop.is_set():
            produced.extend(w.events(RATE // 10, start=i, seed=i))
            i += RATE // 10
            time.sleep(0.1)

    feeder = threading.Thread(target=load, daemon=True)
    feeder.start()
    time.sleep(3)
    rss = [rss_mb(proc.proc.pid)]
    deployed_at: dict[int, float] = {1: 0.0}
    for v in range(2, VERSIONS + 1):
        w.publish(records[v])
        if v % 2 == 1:
            w.deploy(deployment(records[v]["content"], revision=(v + 1) // 2))  # r1, r2, ...
            deployed_at[v] = time.time()
        time.sleep(1.0)
        rss.append(rss_mb(proc.proc.pid))
    stop.set()
    feeder.join(10)
    try:
        wait_caught_up(kafka_bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()

    rows = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, w.namer.predictions)
    ]
    approved_ids = {records[v]["content"]["model_id"] for v in deployed_at}
    assert {r["model_version"] for r in rows} <= set(deployed_at)
    assert {r["model_id"] for r in rows} <= approved_ids, "a prediction from an unapproved model"
    assert {r["association_id"] for r in rows} == set(produced), "events lost"
    assert len(rows) == len(produced), "duplicates without any crash"
    first_seen = {}
    for r in sorted(rows, key=lambda r: r["scored_time"]):
        first_seen.setdefault(r["model_version"], r["scored_time"] / 1000)
    swaps = {v: first_seen[v] - t for v, t in deployed_at.items() if v > 1 and v in first_seen}
    assert len(swaps) >= (VERSIONS // 2) - 1, f"versions never served: {swaps}"
    growth = max(rss[len(rss) // 2 :]) - rss[len(rss) // 2]
    assert growth < 50, f"RSS grew {growth:.0f} MB over the second half of the swaps: {rss}"
    print(
        f"R8: {len(rows)} predictions, swaps (deploy to first prediction) "
        f"max {max(swaps.values()):.2f} s, RSS {rss[0]:.0f}->{rss[-1]:.0f} MB"
    )
