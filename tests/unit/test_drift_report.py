"""Report and breach assembly, hysteresis over windows, and the reference switch."""

from __future__ import annotations

import numpy as np
import pytest

from services.common import serde
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.reference import ReferenceBook, expand_thresholds
from services.drift.report import breach, breach_id, drift_report
from tests.drift_support import (
    PSI_THRESHOLD,
    T0,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)

pytestmark = pytest.mark.unit
FEATURES = [numeric_baseline("x"), categorical_baseline("c", {"a": 50, "b": 50})]


def book_with(*contents: dict, champion: dict, revision: int = 1) -> ReferenceBook:
    book = ReferenceBook()
    for c in contents:
        book.apply(serde.decode(serde.encode("ModelPublished", model_record(c)))[1])
    book.apply(deployment("d", champion, revision=revision))
    return book


def windows_of(monitor: DeploymentMonitor, shifts: list[float], n: int = 1000, seed: int = 0):
    """Feed one count window per shift (mean shift in sd of x); return the closed windows."""
    rng = np.random.default_rng(seed)
    out = []
    for k, shift in enumerate(shifts):
        xs = rng.normal(shift, 1.0, n)
        cs = rng.choice(["a", "b"], n)
        monitor.add_events(
            [
                event("d", k * n + i, T0 + k * n + i, {"x": float(x), "c": str(c)})
                for i, (x, c) in enumerate(zip(xs, cs, strict=True))
            ]
        )
        out += monitor.close_due()
    return out


def test_a_mean_shift_fires_once_continues_while_it_lasts_and_a_return_to_normal_resolves():
    c = content("a" * 64, 1, FEATURES)
    monitor = DeploymentMonitor(book_with(c, champion=c).get("d"), MonitorConfig(window_count=1000))
    closed = windows_of(monitor, [0, 0, 1.0, 1.0, 0, 0])
    fired = [(w.figures.seq, t.metric, t.feature, t.kind) for w in closed for t in w.transitions]
    assert fired == [
        (2, "psi", "x", "firing"),
        (3, "psi", "x", "continuing"),
        (4, "psi", "x", "resolved"),
    ]
    assert closed[2].figures.features[0].psi > 0.25
    assert closed[2].figures.features[0].ks < 1e-6


def test_no_drift_stays_quiet():
    c = content("a" * 64, 1, FEATURES)
    monitor = DeploymentMonitor(book_with(c, champion=c).get("d"), MonitorConfig(window_count=1000))
    closed = windows_of(monitor, [0] * 8, seed=5)
    assert len(closed) == 8
    assert [t for w in closed for t in w.transitions] == []


def test_the_report_has_every_figure_and_encodes_with_the_schema():
    c = content("a" * 64, 1, FEATURES)
    ref = book_with(c, champion=c).get("d")
    monitor = DeploymentMonitor(ref, MonitorConfig(window_count=1000))
    rng = np.random.default_rng(0)
    preds = [prediction("d", i, c, float(p), T0 + i) for i, p in enumerate(rng.random(1000))]
    monitor.add_predictions(
        preds,
        [p["association_id"] for p in preds],
        Joiner({}),
    )
    (w,) = windows_of(monitor, [0])
    record = drift_report(ref, w.figures)
    _, back = serde.decode(serde.encode("DriftReport", record), expected="DriftReport")
    assert back == record
    assert record["event_count"] == 1000 and record["prediction_count"] == 1000
    assert record["model_id"] == "a" * 64 and record["window_end"] == T0 + 1000
    x, cat = record["features"]
    assert x["psi"] is not None and x["ks"] is not None and x["chi2_p"] is None
    assert cat["chi2_p"] is not None and cat["ks"] is None
    assert x["importance"] == pytest.approx(0.5)
    assert record["prediction_psi"] is not None and record["weighted_drift"] is not None


def test_breach_ids_are_deterministic_per_window_and_transition():
    c = content("a" * 64, 1, FEATURES)
    ref = book_with(c, champion=c).get("d")
    run1 = windows_of(DeploymentMonitor(ref, MonitorConfig(window_count=1000)), [0, 1.0, 0])
    run2 = windows_of(DeploymentMonitor(ref, MonitorConfig(window_count=1000)), [0, 1.0, 0])
    ids1 = [breach(ref, w.figures, t, 0)["breach_id"] for w in run1 for t in w.transitions]
    ids2 = [breach(ref, w.figures, t, 0)["breach_id"] for w in run2 for t in w.transitions]
    assert ids1 == ids2 and len(set(ids1)) == 2
    firing = breach(ref, run1[1].figures, run1[1].transitions[0], 5)
    serde.decode(serde.encode("ThresholdBreach", firing), expected="ThresholdBreach")
    assert (firing["kind"], firing["status"], firing["severity"]) == (
        "data_drift",
        "firing",
        "critical",
    )
    t = run1[1].transitions[0]
    assert breach_id("d", t, 1, 2) != breach_id("d", t, 1, 3)


def test_the_reference_switches_when_the_champion_changes():
    old, new = content("a" * 64, 1, FEATURES), content("b" * 64, 2, FEATURES[:1])
    book = book_with(old, new, champion=old)
    monitor = DeploymentMonitor(book.get("d"), MonitorConfig(window_count=1000))
    monitor.add_events([event("d", i, T0 + i, {"x": 0.1, "c": "a"}) for i in range(10)])
    book.apply(deployment("d", new, revision=2))
    closed = monitor.switch(book.get("d"))
    assert [(w.reference.model_id, w.figures.event_count) for w in closed] == [("a" * 64, 10)]
    assert monitor.reference.model_id == "b" * 64
    (w,) = windows_of(monitor, [0])
    assert w.reference.model_id == "b" * 64 and [f.name for f in w.figures.features] == ["x"]


def test_a_threshold_without_a_feature_covers_every_applicable_feature():
    th = expand_thresholds(
        [
            PSI_THRESHOLD,
            {
                **PSI_THRESHOLD,
                "metric": "ks_p",
                "direction": "below",
                "warning": 1e-3,
                "critical": 1e-6,
                "hysteresis": 0.0,
            },
            {**PSI_THRESHOLD, "feature": "x", "warning": 0.5, "critical": 0.9},
        ],
        tuple(FEATURES),
    )
    keys = sorted((t.metric, t.feature, t.warning) for t in th)
    assert keys == [("ks_p", "x", 1e-3), ("psi", "c", 0.1), ("psi", "x", 0.5)]
