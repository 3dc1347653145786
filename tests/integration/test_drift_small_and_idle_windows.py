"""The drift service on the real broker and Redis: the last, partial window of a stream that
stops is reported after ``idle_close_s`` (count and time windows), PSI fires on a small window
(pooled bins) or says how many observations it needs, and the label figures agree (coverage of
the labels' windows, ``labels_joined``, ``unknown_labels``)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from services.common import serde
from tests.drift_service import (
    closed_windows,
    monitor_state,
    start_drift,
    wait_consumed,
)
from tests.drift_support import (
    T0,
    actual,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)
from tests.kafka_support import make_topics, produce, read_all
from tests.signing_support import deployment_bytes

pytestmark = pytest.mark.integration
TOPICS = ["events", "predictions", "actuals", "models", "deployments", "drift", "breaches"]
TOPICS += ["deadletter"]
C = content("9" * 64, 1, [numeric_baseline("x"), numeric_baseline("y", seed=1)])


def _setup(bootstrap: str, prefix: str, window_seconds: int = 60):
    namer = make_topics(bootstrap, prefix, TOPICS)
    produce(bootstrap, namer.models, [(C["name"], serde.encode("ModelPublished", model_record(C)))])
    dep = deployment("d", C, window_seconds=window_seconds)
    produce(bootstrap, namer.deployments, [("d", deployment_bytes(dep))])
    return namer


def _records(bootstrap: str, topic: str, name: str) -> list[dict]:
    return [serde.decode(v, expected=name)[1] for _p, _o, _k, v in read_all(bootstrap, topic)]


def _wait_reports(bootstrap: str, topic: str, n: int, proc, timeout_s: float = 60.0) -> list[dict]:
    """The DriftReports once there are ``n``, oldest window first."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = _records(bootstrap, topic, "DriftReport")
        if len(found) >= n:
            return sorted(found, key=lambda r: r["window_start"])
        assert proc.alive(), proc.log_tail()
        assert time.monotonic() < deadline, f"{len(found)} reports, not {n}\n{proc.log_tail()}"
        time.sleep(0.5)


def _events(ids: range, times: list[int], xs: np.ndarray, ys: list[float | None]):
    return [
        (f"a{i}", serde.encode("FeatureEvent", event("d", i, t, {"x": float(x), "y": y})))
        for i, t, x, y in zip(ids, times, xs, ys, strict=True)
    ]


def _predicted(i: int) -> str:
    return "1" if i % 3 == 0 else "0"


def test_a_partial_count_window_is_reported_after_the_idle_time_with_its_labels(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    idle_s = 8
    namer = _setup(kafka_bootstrap, prefix)
    ns = f"streamops:drift:{drift_group}"
    proc = start_drift(
        kafka_bootstrap,
        prefix,
        drift_group,
        tmp_path / "drift.log",
        window_count=1000,
        idle_close_s=idle_s,
    )
    rng = np.random.default_rng(21)

    def predictions(ids: range):
        return [
            (
                f"a{i}",
                serde.encode(
                    "Prediction",
                    prediction("d", i, C, 0.9 if _predicted(i) == "1" else 0.2, T0 + i),
                ),
            )
            for i in ids
        ]

    try:
        # The first window: its predictions, then its 1000 events, which fill and close it.
        produce(kafka_bootstrap, namer.predictions, predictions(range(1000)))
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.predictions], proc)
        first = range(1000)
        ys = [float(v) for v in rng.normal(0.0, 1.0, 1000)]
        produce(
            kafka_bootstrap,
            namer.events,
            _events(first, [T0 + i for i in first], rng.normal(0.0, 1.0, 1000), ys),
        )
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)
        # Then the stream's last 250 events (x shifted, y mostly missing) with predictions,
        # and the first window's labels for 600 of its predictions, 2 of a class the model
        # does not know. Nothing follows: the second window never fills.
        last = range(1000, 1250)
        ys = [0.5 if i < 1060 else None for i in last]
        produce(kafka_bootstrap, namer.predictions, predictions(last))
        labels = {i: _predicted(i) for i in range(598)} | {598: "2", 599: "maybe"}
        produce(
            kafka_bootstrap,
            namer.actuals,
            [
                (f"a{i}", serde.encode("Actual", actual("d", i, y, T0 + 60_000 + i)))
                for i, y in labels.items()
            ],
        )
        produce(
            kafka_bootstrap,
            namer.events,
            _events(last, [T0 + i for i in last], rng.normal(1.5, 1.0, 250), ys),
        )
        inputs = [namer.events, namer.predictions, namer.actuals]
        wait_consumed(redis_client, ns, kafka_bootstrap, inputs, proc)
        consumed_at = time.time() * 1000
        reports = _wait_reports(kafka_bootstrap, namer.drift, 2, proc)
        assert proc.terminate()[0] == 0, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    log = (tmp_path / "drift.log").read_text()
    assert "recovering" not in log and "1 idle windows closed" in log, proc.log_tail()
    whole, partial = reports
    assert (whole["event_count"], whole["prediction_count"]) == (1000, 1000)
    assert whole["features"][0]["psi_bins"] == 10 and whole["labels_joined"] == 0
    # The partial window: its real count, PSI on pooled bins, and the reason for y's none.
    assert (partial["event_count"], partial["prediction_count"]) == (250, 250)
    x, y = partial["features"]
    assert x["psi_bins"] == 5 and x["psi"] > 0.25 and x["observations"] == 250
    assert (y["psi"], y["psi_needs"], y["observations"]) == (None, 100, 60)
    # Its labels joined the first window's predictions: the figures agree.
    assert partial["labels_joined"] == 600 and partial["unknown_labels"] == 2
    assert partial["metrics"]["accuracy"] == pytest.approx(598 / 600)
    assert partial["label_coverage"] == pytest.approx(0.6)
    # PSI fired on the small window, once the idle time had passed (timeline, wall clock).
    (fired,) = [
        b
        for b in _records(kafka_bootstrap, namer.breaches, "ThresholdBreach")
        if (b["metric"], b["feature"], b["status"]) == ("psi", "x", "firing")
    ]
    assert fired["window_start"] == partial["window_start"]
    waited_s = (fired["observed_at"] - consumed_at) / 1000
    assert idle_s - 1 <= waited_s <= idle_s + 6, waited_s
    # Closed with the state: Redis holds both windows and no open one (R11).
    summaries = closed_windows(redis_client, ns, "d")
    assert sorted(s["events"] for s in summaries.values()) == [250, 1000]
    assert monitor_state(redis_client, ns, "d")["windows"]["open"] == []


def test_the_last_time_window_of_a_stopped_stream_is_reported_and_a_straggler_is_late(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    idle_s = 4
    namer = _setup(kafka_bootstrap, prefix)
    ns = f"streamops:drift:{drift_group}"
    proc = start_drift(
        kafka_bootstrap, prefix, drift_group, tmp_path / "drift.log", idle_close_s=idle_s
    )
    start = T0 - T0 % 60_000  # a window of 60 s, replayed: far behind the wall clock
    rng = np.random.default_rng(22)
    try:
        ids = range(300)  # 30 s of the window; the watermark never passes its end
        times = [start + i * 100 for i in ids]
        produce(
            kafka_bootstrap,
            namer.events,
            _events(ids, times, rng.normal(1.5, 1.0, 300), [0.0] * 300),
        )
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)
        consumed_at = time.time() * 1000
        (report,) = _wait_reports(kafka_bootstrap, namer.drift, 1, proc)
        # A straggler of the closed window, and an event of the next one.
        produce(
            kafka_bootstrap,
            namer.events,
            _events(range(300, 302), [start + 45_000, start + 61_000], np.zeros(2), [0.0, 0.0]),
        )
        reports = _wait_reports(kafka_bootstrap, namer.drift, 2, proc)
        assert proc.terminate()[0] == 0, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    assert [(r["window_start"], r["event_count"], r["late_events"]) for r in reports] == [
        (start, 300, 0),
        (start + 60_000, 1, 1),
    ]
    assert report["features"][0]["psi_bins"] == 5 and report["features"][0]["psi"] > 0.25
    (fired,) = [
        b
        for b in _records(kafka_bootstrap, namer.breaches, "ThresholdBreach")
        if (b["metric"], b["feature"], b["status"]) == ("psi", "x", "firing")
    ]
    assert fired["window_start"] == start
    waited_s = (fired["observed_at"] - consumed_at) / 1000
    assert idle_s - 1 <= waited_s <= idle_s + 6, waited_s
    assert monitor_state(redis_client, ns, "d")["windows"]["open"] == []
