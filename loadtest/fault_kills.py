"""R2 as a benchmark: an exactly-once scorer killed with SIGKILL three times, each time restarted
at once (as a supervisor would) with the same instance id.

Per kill: seconds to the restarted scorer's first committed transaction (its group's committed
offsets rise again) and to the first prediction committed after the kill (broker append time,
read with read_committed). At the end: duplicates and missing events in the read_committed output.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from loadtest import fault_timing as timing
from loadtest.fault_probes import GroupWatch, delete_topics, read_rows, stamp_appends, stop
from services.common.kafka_config import KafkaConfig
from services.common.topics import TopicNamer
from services.scorer.config import ScorerSettings
from tests.kafka_support import wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world


def bound_s(bootstrap: str, group: str) -> dict[str, float]:
    """R2's bound from the clients' config the scorer builds (as in services/scorer/app.py)."""
    kafka = KafkaConfig(bootstrap, "scorer")
    consumer = kafka.consumer(group, max_poll_interval_ms=ScorerSettings.max_poll_interval_ms)
    producer = kafka.producer(linger_ms=ScorerSettings.linger_ms, transactional_id=f"{group}-s1")
    return {
        "session_timeout_s": consumer["session.timeout.ms"] / 1000,
        "transaction_timeout_s": producer.get(
            "transaction.timeout.ms", timing.LIBRDKAFKA_TRANSACTION_TIMEOUT_MS
        )
        / 1000,
        "bound_s": timing.r2_bound_s(consumer, producer),
    }


def run(bootstrap: str, tmp: Path, events: int, kills: int, batch: int) -> dict[str, Any]:
    """Kill, restart, measure; returns the figures and counts."""
    prefix = f"bf2{uuid.uuid4().hex[:6]}."
    stamp_appends(bootstrap, TopicNamer(prefix), ["predictions"])
    w = world(bootstrap, prefix, tmp)
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    ids = w.events(events)
    group = f"scorer-{prefix}"
    proc = w.scorer(
        "--processing-guarantee", "exactly_once", "--batch-size", str(batch), group=group
    )
    watch = GroupWatch(bootstrap, group, w.namer.events, interval_s=0.1)

    def progress(after: float = 0.0) -> int:
        """The committed total in the latest sample, once one was taken after `after`."""
        deadline = time.monotonic() + 30
        while not watch.committed or watch.committed[-1][0] < after:
            if time.monotonic() > deadline:
                raise RuntimeError("R2: the group watch took no sample for 30 s")
            time.sleep(0.02)
        return int(watch.committed[-1][1])

    kill_times: list[float] = []
    progress_at_kill: list[int] = []
    try:
        watch.start()
        proc.start()
        for _ in range(kills):
            # From a sample taken after the last kill: all the dead scorer ever committed.
            base = progress(after=kill_times[-1] if kill_times else 0.0)
            # Each run gets at least 40% of N to do, so the kill comes mid-stream.
            if len(ids) - base < 0.4 * events:
                ids += w.events(events // 2, start=len(ids))
            deadline = time.monotonic() + 90
            while progress() - base < 0.2 * events:
                if not proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"R2: the scorer made no progress:\n{proc.log_tail()}")
                time.sleep(0.05)
            progress_at_kill.append(progress() - base)
            proc.kill9()  # returns once the process is reaped
            kill_times.append(time.time())
            proc.start()
        wait_caught_up(bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code = stop(proc)
        watch.finish()
    rows = read_rows(bootstrap, w.namer.predictions, "Prediction", appended=True)
    served = [(t, r["association_id"]) for t, r in rows if r["served"]]
    counts = timing.delivery_counts(set(ids), (aid for _, aid in served))
    commit_s = [timing.first_rise(watch.committed, t) for t in kill_times]
    flowing_s = [timing.first_after((t for t, _ in served), k) for k in kill_times]
    delete_topics(bootstrap, prefix)
    return {
        "events": len(ids),
        "kills": kills,
        "batch_size": batch,
        "progress_before_each_kill": progress_at_kill,
        "kill_to_first_commit_s": [None if s is None else round(s, 2) for s in commit_s],
        "kill_to_predictions_s": [None if s is None else round(s, 2) for s in flowing_s],
        "exit_code_after": code,
        **counts,
        **bound_s(bootstrap, group),
    }
