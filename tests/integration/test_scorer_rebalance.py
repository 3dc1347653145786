"""R4 scaled to CI: three scorers on twelve partitions, a member stopped or added every 5 s.

Under a steady stream of events, scorers join and leave (clean SIGTERM bounces, dynamic
membership, cooperative rebalancing). Afterwards every event has exactly one champion
prediction: nothing lost, and no duplicates because every bounce was clean.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from services.common import serde
from services.common.admin import create_topic
from tests import kafka_login
from tests.kafka_support import read_all, wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def test_r4_rebalance_churn_loses_nothing_and_clean_bounces_duplicate_nothing(
    kafka_bootstrap, prefix, tmp_path
):
    create_topic(kafka_login.conf(kafka_bootstrap), f"{prefix}events", 12)
    w = world(kafka_bootstrap, prefix, tmp_path)  # creates the other topics
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    group = f"{prefix}scorer"
    scorers = [w.scorer(instance=None, group=group, log_name=f"m{i}").start() for i in range(3)]

    stop = threading.Event()
    produced: list[str] = []

    def feed() -> None:
        i = 0
        while not stop.is_set():
            produced.extend(w.events(150, start=i, seed=i))
            i += 150
            time.sleep(0.25)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    churn = ["stop", "add", "stop", "add", "stop", "add"]
    for n, action in enumerate(churn):
        time.sleep(5)
        if action == "stop":
            code, seconds = scorers.pop(0).terminate()
            assert code == 0 and seconds <= 10, (code, seconds)
        else:
            scorers.append(w.scorer(instance=None, group=group, log_name=f"a{n}").start())
            # A member still importing is no churn yet (and the last one is stopped at once):
            # wait until it is about to join the group.
            scorers[-1].wait_for_log("control replay done")
    stop.set()
    feeder.join(10)
    try:
        wait_caught_up(kafka_bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        codes = [s.terminate()[0] for s in scorers]
    assert codes == [0] * len(codes), [s.log_tail() for s in scorers]
    rows = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, w.namer.predictions)
    ]
    counts = Counter(r["association_id"] for r in rows)
    assert set(counts) == set(produced), f"lost {len(set(produced) - set(counts))}"
    duplicated = {a: c for a, c in counts.items() if c > 1}
    assert not duplicated, f"{len(duplicated)} duplicates after clean bounces"
    print(f"R4: {len(produced)} events across {len(churn)} membership changes, 0 lost, 0 dup")
