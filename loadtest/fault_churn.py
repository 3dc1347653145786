"""R4 as a benchmark: three scorers on twelve partitions under a steady stream, a member stopped
(SIGTERM, a clean bounce) or added every `every_s` seconds.

Per membership change: the group's peak lag until the next change and the seconds until its lag
is back under the limit for good (`fault_timing.back_under`). At the end: lost and duplicated
events among the champion predictions.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from loadtest import fault_timing as timing
from loadtest.bench_scorer import wait_members
from loadtest.fault_probes import Feeder, GroupWatch, delete_topics, log, read_rows, stop
from services.common.admin import create_topic
from tests.kafka_support import wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world

LAG_LIMIT = 1000
HORIZON_S = 60.0
PARTITIONS = 12


def run(bootstrap: str, tmp: Path, rate: int, every_s: float, changes: list[str]) -> dict[str, Any]:
    """Churn the group while feeding it; returns the figures and counts."""
    prefix = f"bf4{uuid.uuid4().hex[:6]}."
    create_topic({"bootstrap.servers": bootstrap}, f"{prefix}events", PARTITIONS)
    w = world(bootstrap, prefix, tmp)  # creates the other topics
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    group = f"scorer-{prefix}"
    scorers = []
    feeder = Feeder(bootstrap, w.namer.events, prefix, rate)
    watch = GroupWatch(bootstrap, group, w.namer.events, interval_s=0.2)
    bounces: list[tuple[int | None, float]] = []
    marks: list[tuple[float, str]] = []
    try:
        scorers += [
            w.scorer(instance=None, group=group, log_name=f"m{i}").start() for i in range(3)
        ]
        wait_members(bootstrap, group, 3)
        log("R4: 3 scorers in the group; feeding and churning")
        feeder.start()
        watch.start()
        time.sleep(every_s / 4)  # steady state before the first change
        for n, action in enumerate(changes):
            marks.append((time.time(), action))
            if action == "stop":
                proc = scorers.pop(0)
                started = time.monotonic()
                bounces.append((stop(proc), round(time.monotonic() - started, 2)))
            else:
                scorers.append(w.scorer(instance=None, group=group, log_name=f"a{n}").start())
            time.sleep(max(0.0, marks[-1][0] + every_s - time.time()))
        fed_until = time.time()  # the last change's window ends with the load
        feeder.finish()
        wait_caught_up(bootstrap, group, w.namer.events, timeout_s=120)
        log("R4: caught up; reading the predictions back")
    finally:
        feeder.finish()
        codes = [stop(s) for s in scorers]
        watch.finish()
    rows = read_rows(bootstrap, w.namer.predictions, "Prediction")
    served = [(t, r["association_id"]) for t, r in rows if r["served"]]
    counts = timing.delivery_counts(feeder.delivered(), (aid for _, aid in served))
    twice = timing.duplicated(aid for _, aid in served)
    ends = [t for t, _ in marks[1:]] + [fed_until]
    per_change = [
        {
            "change": action,
            "at_s": round(t - marks[0][0], 1),
            "peak_lag": timing.peak(watch.lag, t, next_t),
            "back_under_s": timing.back_under(watch.lag, t, next_t, LAG_LIMIT, HORIZON_S),
        }
        for (t, action), next_t in zip(marks, ends, strict=True)
    ]
    log(f"R4: read {len(rows)} predictions")
    delete_topics(bootstrap, prefix)
    return {
        "events": feeder.sent,
        "rate_per_s": rate,
        "partitions": PARTITIONS,
        "change_every_s": every_s,
        "lag_limit": LAG_LIMIT,
        "horizon_s": HORIZON_S,
        "changes": per_change,
        "bounces_exit_code_and_s": bounces,
        "final_exit_codes": codes,
        "undelivered_inputs": len(feeder.failed) + feeder.unflushed,
        **counts,
        # When the duplicated predictions were produced, from the first change (at most 20).
        "duplicates_produced_at_s": sorted(
            round(t - marks[0][0], 1) for t, aid in served if aid in twice
        )[:20],
    }
