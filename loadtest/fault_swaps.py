"""R8 as a benchmark: `versions` approved model versions deployed one per second while a scorer
serves a steady stream, with an unapproved (published, never deployed) version between each two.

Each model is published a step before it is deployed, so a swap times the Deployment alone.
Per swap: from the Deployment record's append to the first prediction by the new version,
both broker append times (the two topics use LogAppendTime here). At the end: predictions not
tagged with a deployed version, predictions by an unapproved model, lost and duplicated events.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from loadtest import fault_timing as timing
from loadtest.fault_probes import Feeder, delete_topics, read_rows, stamp_appends, stop
from services.common.topics import TopicNamer
from tests.kafka_support import wait_caught_up
from tests.model_factory import credit_content, deployment, published
from tests.scorer_support import rss_mb, variant, world


def run(bootstrap: str, tmp: Path, versions: int, rate: int) -> dict[str, Any]:
    """Swap under load; returns the figures and counts."""
    prefix = f"bf8{uuid.uuid4().hex[:6]}."
    stamp_appends(bootstrap, TopicNamer(prefix), ["deployments", "predictions"])
    w = world(bootstrap, prefix, tmp)
    base = credit_content(1)
    # Odd versions are approved (deployed), even ones only published.
    records = {
        v: published(base, w.key, version=v, onnx=variant(base["onnx"], v))
        for v in range(1, 2 * versions)
    }
    approved = list(range(1, 2 * versions, 2))
    w.publish(records[1], records[3])
    w.deploy(deployment(records[1]["content"], revision=1))
    group = f"scorer-{prefix}"
    proc = w.scorer(group=group)
    feeder = Feeder(bootstrap, w.namer.events, prefix, rate)
    rss: list[float] = []
    try:
        proc.start().wait_for_log("control replay done", timeout_s=120)
        feeder.start()
        time.sleep(3)
        rss.append(round(rss_mb(proc.proc.pid), 1))
        for v in approved[1:]:
            step = time.monotonic()
            w.deploy(deployment(records[v]["content"], revision=(v + 1) // 2))  # r1, r2, ...
            w.publish(*(records[u] for u in (v + 1, v + 2) if u in records))
            time.sleep(max(0.0, step + 1.0 - time.monotonic()))
            rss.append(round(rss_mb(proc.proc.pid), 1))
        time.sleep(1)
        feeder.finish()
        wait_caught_up(bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        feeder.finish()
        code = stop(proc)
    rows = read_rows(bootstrap, w.namer.predictions, "Prediction", appended=True)
    deployed = {
        r["champion"]["version"]: t
        for t, r in read_rows(bootstrap, w.namer.deployments, "Deployment", appended=True)
        if r["revision"] > 1
    }
    seen = timing.first_seen((t, r["model_version"]) for t, r in rows)
    swaps = timing.swap_latencies(deployed, seen)
    approved_ids = {records[v]["content"]["model_id"] for v in approved}
    delete_topics(bootstrap, prefix)
    return {
        "versions_deployed": len(approved),
        "unapproved_published": versions - 1,
        "rate_per_s": rate,
        "swap_s": swaps,
        "swap_s_summary": timing.spread(swaps.values()),
        "version_not_deployed": sum(1 for _, r in rows if r["model_version"] not in approved),
        "from_unapproved": sum(1 for _, r in rows if r["model_id"] not in approved_ids),
        "predictions": len(rows),
        "events": feeder.sent,
        "undelivered_inputs": len(feeder.failed) + feeder.unflushed,
        "rss_mb_first_last": [rss[0], rss[-1]] if rss else [],
        "exit_code_after": code,
        **timing.delivery_counts(
            feeder.delivered(), (r["association_id"] for _, r in rows if r["served"])
        ),
    }
