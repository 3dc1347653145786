"""Two drift processes sharing one group's stream (``--shards 2``) report what one process
reports: the same windows with the same figures, from the same records (real broker, Redis)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from services.common import serde
from services.drift.config import DriftSettings
from tests.drift_service import metric_value, start_drift, stored_offsets, wait_consumed
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
from tests.integration.test_drift_r11 import redis_sh, redis_sh_status
from tests.integration.test_drift_service import TOPICS, records
from tests.kafka_support import free_port, make_topics, produce
from tests.signing_support import deployment_bytes

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
    """(topic, key, schema, record) per phase: events and predictions in three phases, then
    labels for half of them (joined in the newest open window, the sixth), then an event that
    closes all six."""
    rng = np.random.default_rng(8)
    phases: list[list[tuple[str, str, str, dict]]] = [[], [], [], [], []]
    for i in range(N):  # with missing values, an unseen category, a shift in windows 2 and 3
        x = None if i % 97 == 0 else float(rng.normal(1.0 if 2000 <= i < 4000 else 0.0))
        k = "z" if i % 53 == 0 else str(rng.choice(["a", "b"]))
        e = event("d", i, T0 + i, {"x": x, "k": k})
        p = prediction("d", i, c, float(rng.uniform()), T0 + i)
        phases[i * 3 // N] += [
            ("events", f"a{i}", "FeatureEvent", e),
            ("predictions", f"a{i}", "Prediction", p),
        ]
    for i in range(0, N, 2):
        label = str(int(rng.uniform() < 0.6))
        phases[3].append(("actuals", f"a{i}", "Actual", actual("d", i, label, T0 + N + i)))
    # Past the six windows and the allowed lateness (10 s): one process sees it, both close.
    closing = event("d", N, T0 + N + 11_000, {"x": 0.0, "k": "a"})
    phases[4].append(("events", f"a{N}", "FeatureEvent", closing))
    return phases


class Shard:
    """What a fault hook can do to the group: restart a process, read its stored progress."""

    def __init__(self, restart: Callable[[int], Any], stored: Callable[[int], int]) -> None:
        self.restart, self.stored = restart, stored


Faults = Callable[[int, dict[str, list[Any]], Shard], None]


def _run(kafka_bootstrap, redis_client, tmp_path, group: str, faults: Faults | None = None):
    """The same records through one process and through a group of two (with ``faults``
    injected into the group after each phase is produced); (one's reports, the group's
    reports, one's breaches, the group's breaches)."""
    c = content(
        "e" * 64, 1, [numeric_baseline("x"), categorical_baseline("k", {"a": 5000, "b": 5000})]
    )
    runs = {"one": f"t{uuid.uuid4().hex[:10]}.", "two": f"t{uuid.uuid4().hex[:10]}."}
    namers = {run: make_topics(kafka_bootstrap, prefix, TOPICS) for run, prefix in runs.items()}
    for namer in namers.values():
        model = serde.encode("ModelPublished", model_record(c))
        produce(kafka_bootstrap, namer.models, [(c["name"], model)])
        dep = deployment("d", c, window_seconds=1)
        produce(kafka_bootstrap, namer.deployments, [("d", deployment_bytes(dep))])

    def shard(s: int):
        # Small batches: a fault lands mid-stream.
        path = tmp_path / f"shard{s}.log"
        return start_drift(
            kafka_bootstrap, runs["two"], group, path, shards=2, shard=s, batch_size=50
        )

    procs = {
        "one": [start_drift(kafka_bootstrap, runs["one"], group, tmp_path / "one.log")],
        "two": [shard(0), shard(1)],
    }

    def restart(s: int):
        procs["two"][s] = shard(s)
        return procs["two"][s]

    spaces = {
        "one": [f"streamops:drift:{group}"],
        "two": _shard_namespaces(group),
    }

    def stored(s: int) -> int:
        try:
            offsets = stored_offsets(redis_client, spaces["two"][s])
        except Exception:  # Redis restarting
            return -1
        return sum(o for (t, _p), o in offsets.items() if t == namers["two"].events)

    try:
        for number, phase in enumerate(_phases(c)):
            for namer in namers.values():  # the group's last: its faults follow at once
                for topic in ("events", "predictions", "actuals"):
                    items = [(k, serde.encode(s, r)) for t, k, s, r in phase if t == topic]
                    if items:
                        produce(kafka_bootstrap, namer.name(topic), items)
            if faults is not None:
                faults(number, procs, Shard(restart, stored))
            for run, namer in namers.items():  # every process has read the phase
                inputs = [namer.events, namer.predictions, namer.actuals]
                wait_consumed(redis_client, spaces[run], kafka_bootstrap, inputs, procs[run])
        # Process 0 merges at most every 0.1 s, once both processes' marks are past a window.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            two = records(kafka_bootstrap, namers["two"].drift, "DriftReport")
            if len({r["window_start"] for r in two}) >= 6:
                break
            time.sleep(0.5)
        for proc in procs["one"] + procs["two"]:
            code, _seconds = proc.terminate()
            assert code == 0, proc.log_tail()
    finally:
        for proc in procs["one"] + procs["two"]:
            if proc.alive():
                proc.kill9()
    reports = {run: records(kafka_bootstrap, n.drift, "DriftReport") for run, n in namers.items()}
    breaches = {
        run: records(kafka_bootstrap, n.breaches, "ThresholdBreach") for run, n in namers.items()
    }
    return reports["one"], reports["two"], breaches["one"], breaches["two"]


def _timeline(breaches: list[dict]) -> list[tuple]:
    return [(b["metric"], b["feature"], b["status"], b["window_start"]) for b in breaches]


def test_two_shards_report_what_one_process_reports(
    kafka_bootstrap, redis_client, drift_group, tmp_path
):
    one, two, one_breaches, two_breaches = _run(
        kafka_bootstrap, redis_client, tmp_path, drift_group
    )
    assert [r["event_count"] for r in one] == [1000] * 6
    assert one[-1]["metrics"]["accuracy"] > 0 and one[-1]["label_coverage"] == 0.5
    assert one[0]["features"][1]["unseen_rate"] > 0 and one[0]["features"][0]["missing_rate"] > 0
    assert [_comparable(r) for r in two] == [_comparable(r) for r in one]
    # Thresholds run over the merged windows: the shift fires, continues and resolves.
    statuses = [(m, f, s) for m, f, s, _t in _timeline(one_breaches) if (m, f) == ("psi", "x")]
    assert statuses == [("psi", "x", "firing"), ("psi", "x", "firing"), ("psi", "x", "resolved")]
    assert _timeline(two_breaches) == _timeline(one_breaches)
    merged = redis_client.hgetall(f"streamops:drift:{drift_group}:of-2:closed:d")
    assert len(merged) == 6, "process 0 keeps the merged windows' summaries"


def test_kills_of_either_process_and_of_redis_neither_double_count_nor_miss(
    kafka_bootstrap, redis_client, drift_group, tmp_path
):
    """R11 for a sharded group: kill -9 each process mid-stream and Redis once, then process 0
    as the windows close. Reports may repeat (at-least-once); each window's equals one
    process's, and none is missing."""
    killed: list[tuple[str, int]] = []  # (what, events its process had stored before)

    def faults(phase: int, procs: dict[str, list[Any]], shard: Shard) -> None:
        """After the first phases of events: kill -9 shard 1, then shard 0, then Redis, once
        the shard made progress on the phase; after the closing event, shard 0 as it merges."""
        if phase in (0, 1, 2):
            s = 1 - phase if phase < 2 else 0
            before = shard.stored(s)  # it may be through the phase already: then at once
            deadline = time.monotonic() + 0.5
            while shard.stored(s) == before and time.monotonic() < deadline:
                time.sleep(0.002)
            if phase < 2:
                procs["two"][s].kill9()
                killed.append((f"shard {s}", shard.stored(s)))
                shard.restart(s)
            else:
                redis_sh("kill")
                killed.append(("redis", before))
                time.sleep(0.5)
                redis_sh("start")
        elif phase == 4:
            time.sleep(0.15)  # the clocks meet, process 0 merges (or is about to)
            procs["two"][0].kill9()
            killed.append(("shard 0 at the merge", shard.stored(0)))
            shard.restart(0)

    try:
        one, two, one_breaches, two_breaches = _run(
            kafka_bootstrap, redis_client, tmp_path, drift_group, faults
        )
    finally:
        if redis_sh_status() != 0:
            redis_sh("start")
    print(f"sharded R11 kills (what, events its process had stored): {killed}")
    assert [k[0] for k in killed] == ["shard 1", "shard 0", "redis", "shard 0 at the merge"]
    by_window: dict[int, list[dict]] = {}
    for r in two:
        by_window.setdefault(r["window_start"], []).append(_comparable(r))
    assert sorted(by_window) == [r["window_start"] for r in one], "no window missing"
    for r in one:
        copies = by_window[r["window_start"]]
        assert all(c == _comparable(r) for c in copies), r["window_start"]
    seen = list(dict.fromkeys(_timeline(two_breaches)))  # repeats of a replayed merge dropped
    assert seen == _timeline(one_breaches)


def test_a_process_that_starts_late_has_its_parts_counted_late_not_reported_twice(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    """Process 0 merges without a process that has no mark yet; that process's parts of the
    windows merged meanwhile count as late events, not as second reports of those windows.

    Every event of those windows is counted once: in their reports, or as late (the late parts
    process 0 counts, and the late events of the reports). A process that fetches one
    partition's window-closing event before another partition's events of those windows (or
    that closes them on the group's clock after a first batch that held only some partitions)
    counts the rest late itself, in the next window it reports: here the window the closing
    events are in, closed in turn by one more event on every partition."""
    c = content("e" * 64, 1, [numeric_baseline("x")])
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    produce(
        kafka_bootstrap,
        namer.models,
        [(c["name"], serde.encode("ModelPublished", model_record(c)))],
    )
    dep = deployment("d", c, window_seconds=1)
    produce(kafka_bootstrap, namer.deployments, [("d", deployment_bytes(dep))])
    group = drift_group
    port = free_port()
    first = start_drift(
        kafka_bootstrap,
        prefix,
        group,
        tmp_path / "shard0.log",
        shards=2,
        shard=0,
        metrics_port=port,
    )
    try:
        # Three windows, and events past them and the lateness (in window 14), on every
        # partition.
        items = [(f"a{i}", event("d", i, T0 + i, {"x": 0.1})) for i in range(3000)]
        items += _past("b", 3000, T0 + 14_000)
        _produce_events(kafka_bootstrap, namer.events, items)
        reports = _wait_reports(kafka_bootstrap, namer.drift, 3)
        shard0 = sum(r["event_count"] for r in reports)
        second = start_drift(
            kafka_bootstrap, prefix, group, tmp_path / "shard1.log", shards=2, shard=1
        )
        try:
            spaces = _shard_namespaces(group)
            wait_consumed(redis_client, spaces, kafka_bootstrap, [namer.events], [first, second])
            # Closes window 14 in both processes.
            _produce_events(kafka_bootstrap, namer.events, _past("c", 3060, T0 + 30_000))
            # Merged in key order: the late parts of windows 0-2 are counted by then.
            window14 = _wait_reports(kafka_bootstrap, namer.drift, 4)[3]
            late = metric_value(port, "streamops_drift_late_total", {"record": "event"})
            code, _ = second.terminate()
            assert code == 0, second.log_tail()
        finally:
            if second.alive():
                second.kill9()
        code, _ = first.terminate()
        assert code == 0, first.log_tail()
    finally:
        if first.alive():
            first.kill9()
    again = records(kafka_bootstrap, namer.drift, "DriftReport")
    starts = [r["window_start"] for r in reports] + [window14["window_start"]]
    assert [r["window_start"] for r in again] == starts, "no repeats"
    assert window14["event_count"] == 60, window14["event_count"]
    # The late events counter holds the late parts' events and those reported in window 14.
    assert 0 < shard0 < 3000 and late == 3000 - shard0, (shard0, late, window14["late_events"])
    assert window14["late_events"] < late, "the late parts are counted, not reported"
    assert "came after the window was merged" in (tmp_path / "shard0.log").read_text()
    parts = redis_client.smembers(f"streamops:drift:{group}:of-2:parts:d")
    assert parts == set(), "late parts are deleted with the merge"


def _shard_namespaces(group: str) -> list[str]:
    """Where each of a group of two keeps its state (the service's own naming)."""
    return [DriftSettings(group_id=group, shards=2, shard=s).namespace for s in (0, 1)]


def _produce_events(bootstrap: str, topic: str, items: list[tuple[str, dict]]) -> None:
    produce(bootstrap, topic, [(k, serde.encode("FeatureEvent", e)) for k, e in items])


def _past(tag: str, first: int, t: int) -> list[tuple[str, dict]]:
    """Sixty events at time ``t``, keyed to reach every partition of the events topic."""
    return [(f"{tag}{i}", event("d", first + i, t, {"x": 0.1})) for i in range(60)]


def _wait_reports(bootstrap: str, topic: str, n: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = records(bootstrap, topic, "DriftReport")
        if len(found) >= n:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{n} reports not merged within 30 s")
