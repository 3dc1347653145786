"""Two drift processes sharing one group's stream (``--shards 2``) report what one process
reports: the same windows with the same figures, from the same records (real broker, Redis)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest

from services.common import serde
from tests.drift_service import start_drift, wait_consumed
from tests.drift_support import (
    T0,
    actual,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)
from tests.integration.test_drift_service import TOPICS, records
from tests.kafka_support import make_topics, produce

pytestmark = pytest.mark.integration
N = 6000  # events 1 ms apart: six windows of one second


def _comparable(value: Any) -> Any:
    """A report with its floats to 9 digits (sums may run in another order) and without its
    change point: each process runs its own change detector on its own errors."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k != "change_point"}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _phases(c: dict) -> list[list[tuple[str, str, str, dict]]]:
    """(topic, key, schema, record) per phase: events and predictions, then labels for half of
    them (joined in the newest open window, the sixth), then an event that closes all six."""
    rng = np.random.default_rng(8)
    phases: list[list[tuple[str, str, str, dict]]] = [[], [], []]
    for i in range(N):  # with missing values and an unseen category
        x = None if i % 97 == 0 else float(rng.normal(0.2))
        k = "z" if i % 53 == 0 else str(rng.choice(["a", "b"]))
        e = event("d", i, T0 + i, {"x": x, "k": k})
        p = prediction("d", i, c, float(rng.uniform()), T0 + i)
        phases[0] += [
            ("events", f"a{i}", "FeatureEvent", e),
            ("predictions", f"a{i}", "Prediction", p),
        ]
    for i in range(0, N, 2):
        label = str(int(rng.uniform() < 0.6))
        phases[1].append(("actuals", f"a{i}", "Actual", actual("d", i, label, T0 + N + i)))
    # Past the six windows and the allowed lateness (10 s): one process sees it, both close.
    closing = event("d", N, T0 + N + 11_000, {"x": 0.0, "k": "a"})
    phases[2].append(("events", f"a{N}", "FeatureEvent", closing))
    return phases


def test_two_shards_report_what_one_process_reports(kafka_bootstrap, redis_client, tmp_path):
    c = content(
        "e" * 64, 1, [numeric_baseline("x"), categorical_baseline("k", {"a": 5000, "b": 5000})]
    )
    group = f"it-{uuid.uuid4().hex[:8]}"
    runs = {"one": f"t{uuid.uuid4().hex[:10]}.", "two": f"t{uuid.uuid4().hex[:10]}."}
    namers = {run: make_topics(kafka_bootstrap, prefix, TOPICS) for run, prefix in runs.items()}
    for namer in namers.values():
        produce(
            kafka_bootstrap,
            namer.models,
            [(c["name"], serde.encode("ModelPublished", model_record(c)))],
        )
        dep = deployment("d", c, window_seconds=1)
        produce(kafka_bootstrap, namer.deployments, [("d", serde.encode("Deployment", dep))])
    procs = {
        "one": [start_drift(kafka_bootstrap, runs["one"], group, tmp_path / "one.log")],
        "two": [
            start_drift(
                kafka_bootstrap,
                runs["two"],
                group,
                tmp_path / f"shard{s}.log",
                shards=2,
                shard=s,
            )
            for s in (0, 1)
        ],
    }
    spaces = {
        "one": [f"streamops:drift:{group}"],
        "two": [f"streamops:drift:{group}:shard-{s}-of-2" for s in (0, 1)],
    }
    try:
        for phase in _phases(c):
            for namer in namers.values():
                for topic in ("events", "predictions", "actuals"):
                    items = [(k, serde.encode(s, r)) for t, k, s, r in phase if t == topic]
                    if items:
                        produce(kafka_bootstrap, namer.name(topic), items)
            for run, namer in namers.items():  # every process has read the phase
                inputs = [namer.events, namer.predictions, namer.actuals]
                wait_consumed(redis_client, spaces[run], kafka_bootstrap, inputs, procs[run])
        # Process 0 merges at most every 0.1 s, once both processes' marks are past a window.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            two = records(kafka_bootstrap, namers["two"].drift, "DriftReport")
            if len(two) >= 6:
                break
            time.sleep(0.5)
        one = records(kafka_bootstrap, namers["one"].drift, "DriftReport")
        for proc in procs["one"] + procs["two"]:
            code, _seconds = proc.terminate()
            assert code == 0, proc.log_tail()
    finally:
        for proc in procs["one"] + procs["two"]:
            if proc.alive():
                proc.kill9()
    assert [r["event_count"] for r in one] == [1000] * 6
    assert [r["window_start"] for r in two] == [r["window_start"] for r in one]
    assert one[-1]["metrics"]["accuracy"] > 0 and one[-1]["label_coverage"] == 0.5
    assert one[0]["features"][1]["unseen_rate"] > 0 and one[0]["features"][0]["missing_rate"] > 0
    assert [_comparable(r) for r in two] == [_comparable(r) for r in one]
    merged = redis_client.hgetall(f"streamops:drift:{group}:of-2:closed:d")
    assert len(merged) == 6, "process 0 keeps the merged windows' summaries"
