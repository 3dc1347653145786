"""R2: the scorer in exactly-once mode, killed with SIGKILL three times mid-stream.

Downstream, with read_committed, every input event has exactly one champion prediction: no
duplicates from the replays and none missing. The restarted scorer reuses its instance id, so
its transactional id fences the dead one and its open transaction is aborted.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from services.common import serde
from tests.kafka_support import committed, read_all, wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration

N = 6000
KILLS = 3


def test_r2_kill9_three_times_gives_each_event_exactly_one_prediction(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    ids = w.events(N)
    group = f"{prefix}scorer"
    proc = w.scorer("--processing-guarantee", "exactly_once", "--batch-size", "200", group=group)

    def progress() -> int:
        return sum(max(o, 0) for o in committed(kafka_bootstrap, group, w.namer.events).values())

    recoveries = []
    try:
        for _ in range(KILLS):
            base = progress()
            # The kill comes once 20% of N more is committed, seen some 50-100 ms late: a fast
            # scorer may have gone well past it. Each restart gets at least 40% of N to do, so
            # it is killed mid-stream (the new events are expected downstream too).
            if len(ids) - base < 0.4 * N:
                ids += w.events(N // 2, start=len(ids))
            started = time.monotonic()
            proc.start()
            deadline = started + 90
            while progress() - base < 0.2 * N:
                assert proc.alive(), proc.log_tail()
                assert time.monotonic() < deadline, f"no progress:\n{proc.log_tail()}"
                time.sleep(0.05)
            recoveries.append(time.monotonic() - started)
            proc.kill9()
    except BaseException:
        if proc.alive():  # no scorer left running after a failure
            proc.kill9()
        raise
    proc.start()
    try:
        wait_caught_up(kafka_bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()

    rows = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, w.namer.predictions)
    ]
    counts = Counter(r["association_id"] for r in rows if r["served"])
    duplicates = {aid: c for aid, c in counts.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} duplicated predictions under read_committed"
    assert set(counts) == set(ids), f"missing {len(set(ids) - set(counts))}"
    print(
        f"R2: {len(ids)} events, {KILLS} kills, 0 duplicates; restart to 20% progress took "
        f"{', '.join(f'{s:.1f}' for s in recoveries)} s"
    )
