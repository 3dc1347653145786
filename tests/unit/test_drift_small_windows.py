"""PSI in windows under its minimum of 500 observations: computed on pooled bins, so thresholds
can fire there, or null with how many observations it needs, in the report itself."""

from __future__ import annotations

import numpy as np
import pytest

from services.common import serde
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.report import drift_report
from services.drift.statistics import PSI
from services.drift.statistics.merging import groups, needed
from tests.drift_support import (
    T0,
    categorical_baseline,
    champion_reference,
    content,
    event,
    numeric_baseline,
)

pytestmark = pytest.mark.unit

DECILES = numeric_baseline("x")


def _window(count: int, rows: list[dict]) -> dict:
    """The DriftReport of one count window of ``count`` events (``rows``: their features),
    through Avro and back; the monitor's threshold transitions as ``"breaches"``."""
    c = content("c" * 64, 1, [numeric_baseline("x"), numeric_baseline("y", seed=1)])
    monitor = DeploymentMonitor(champion_reference(c), MonitorConfig(window_count=count))
    monitor.add_events([event("d", i, T0 + i, f) for i, f in enumerate(rows)])
    (closed,) = monitor.close_due()
    record = serde.decode(
        serde.encode("DriftReport", drift_report(closed.reference, closed.figures)),
        expected="DriftReport",
    )[1]
    record["breaches"] = [(t.metric, t.feature, t.kind) for t in closed.transitions]
    return record


def test_a_200_event_window_reports_psi_on_pooled_bins_and_its_threshold_fires():
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 200)
    report = _window(200, [{"x": float(v), "y": float(w)} for v, w in zip(xs, ys, strict=True)])
    x, y = report["features"]
    assert report["event_count"] == 200
    assert x["observations"] == 200 and x["psi_bins"] == 3 and x["psi_needs"] == 0
    assert x["psi"] > 0.25, x  # a one-sd shift
    assert y["psi"] < 0.1 and y["psi_bins"] == 3  # no shift: quiet on three bins too
    assert ("psi", "x", "firing") in report["breaches"]
    assert ("psi", "y", "firing") not in report["breaches"]
    assert report["weighted_drift"] is not None


def test_a_window_too_small_for_psi_says_how_many_observations_it_needs():
    rows = [{"x": float(i % 7), "y": None if i >= 30 else 0.5} for i in range(60)]
    x, y = _window(60, rows)["features"]
    assert (x["psi"], x["psi_bins"], x["psi_needs"], x["observations"]) == (None, None, 100, 60)
    # Missing values are not observations: y had 30 of its 60.
    assert (y["psi"], y["psi_needs"], y["observations"]) == (None, 100, 30)
    assert y["missing_rate"] == 0.5


def test_from_the_minimum_psi_is_computed_on_every_baseline_bin_as_before():
    rng = np.random.default_rng(5)
    values = rng.normal(0.3, 1.0, 500)
    psi = PSI(DECILES)
    psi.update(values)
    w = np.bincount(
        np.searchsorted(np.asarray(DECILES["bin_edges"])[1:-1], values, side="right"), minlength=10
    )
    r = np.asarray(DECILES["bin_counts"], dtype=float)
    ws, rs = (w + 0.5) / (w.sum() + 5), (r + 0.5) / (r.sum() + 5)
    assert psi.bins() == 10
    assert psi.get() == pytest.approx(float(np.sum((ws - rs) * np.log(ws / rs))))


def test_pooled_psi_is_psi_of_the_pooled_counts():
    rng = np.random.default_rng(6)
    values = rng.normal(0.5, 1.0, 180)
    psi = PSI(DECILES)
    psi.update(values)
    counts = np.asarray(psi.state()["counts"], dtype=float)
    ref = np.asarray(DECILES["bin_counts"], dtype=float)
    pooled = groups(ref / ref.sum(), 180, 50.0)
    assert pooled == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]  # 18 expected a decile: three of 54+
    w = np.array([counts[g].sum() for g in pooled])
    r = np.array([ref[g].sum() for g in pooled])
    ws, rs = (w + 0.5) / (w.sum() + 1.5), (r + 0.5) / (r.sum() + 1.5)
    assert psi.bins() == 3
    assert psi.get() == pytest.approx(float(np.sum((ws - rs) * np.log(ws / rs))))


def test_categories_pool_from_the_rarest_and_the_unseen_bucket_stays_alone():
    base = categorical_baseline("c", {"a": 40, "b": 30, "c": 20, "d": 10})
    psi = PSI(base)  # 500 / 4 categories: each group expects at least 125 observations
    assert psi.needed() == 313  # a | b c d: the smaller side, 40%, holds 125 from 312.5
    psi.update(["a"] * 140 + ["b"] * 150 + ["zz"] * 60)  # 350, 60 of them unseen
    assert psi.bins() == 3  # a (expects 140), b c d (105 + 70 + 35), unseen
    w = np.array([140.0, 150.0, 60.0])
    r = np.array([40.0, 60.0, 0.0])
    ws, rs = (w + 0.5) / (w.sum() + 1.5), (r + 0.5) / (r.sum() + 1.5)
    assert psi.get() == pytest.approx(float(np.sum((ws - rs) * np.log(ws / rs))))
    assert psi.get() > 0.25  # a new category in 17% of the window shows


def test_needed_is_the_fewest_observations_with_two_groups():
    for shares in (np.full(10, 0.1), np.array([0.7, 0.2, 0.1]), np.array([0.05] * 4 + [0.8])):
        first = needed(shares, 50.0)
        assert len(groups(shares, first, 50.0)) >= 2
        assert len(groups(shares, first - 1, 50.0)) == 1
    assert needed(np.array([1.0]), 50.0) == 0  # one bin never makes two groups
    single = PSI(categorical_baseline("c", {"a": 10}))
    assert single.needed() == 500  # one category: only its own minimum gives a value


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
@pytest.mark.parametrize("n", [120, 200, 350])
def test_pooled_psi_false_alarms_at_most_one_percent_and_a_mean_shift_is_seen(kind, n):
    """No drift: at most 1% of small windows reach the suggested warning (0.1), as for full
    ones (test_drift_calibration). A half-sd mean shift or a new category at 10%: flagged."""
    rng = np.random.default_rng(n + len(kind))
    probs = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    cats = np.array(list("abcdef"))
    windows, alarms, flagged, values = 300, 0, 0, 0
    for _ in range(windows):
        if kind == "numeric":
            sample = rng.normal(0.0, 1.0, 10_000)
            edges = np.quantile(sample, np.linspace(0, 1, 11))
            counts = np.histogram(sample, edges)[0]
            base = {
                "name": "x",
                "kind": "numeric",
                "bin_edges": edges.tolist(),
                "bin_counts": counts.tolist(),
            }
            same, moved = rng.normal(0.0, 1.0, n), rng.normal(0.5, 1.0, n)
        else:
            sample = rng.choice(cats, 10_000, p=probs)
            found, counts = np.unique(sample, return_counts=True)
            base = categorical_baseline("c", dict(zip(found.tolist(), counts, strict=True)))
            same = rng.choice(cats, n, p=probs).astype(object)
            moved = same.copy()
            moved[rng.random(n) < 0.1] = "new"
        quiet, shifted = PSI(base), PSI(base)
        quiet.update(same)
        shifted.update(moved)
        if quiet.get() is None:
            continue  # categorical under its floor (185 here)
        values += 1
        alarms += quiet.get() >= 0.1
        flagged += shifted.get() >= 0.1
    if kind == "categorical" and n < 185:
        assert values == 0
        return
    assert values == windows
    assert alarms / windows <= 0.01, alarms
    # Two pooled bins (n = 120) still see a half-sd shift most of the time; three and more
    # nearly always.
    assert flagged / windows >= (0.7 if n < 167 else 0.9), flagged
