"""The dashboard's pure parts: live figures from samples, health colours, distributions."""

from __future__ import annotations

import doctest

import pytest

from services.registry import dashboard_data, live
from services.registry.dashboard_data import distribution, health, window_series
from services.registry.live import LiveStats

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("module", [live, dashboard_data])
def test_doctests(module):
    failed, _ = doctest.testmod(module)
    assert failed == 0


def test_rates_are_the_topic_rate_times_the_sample_share():
    stats = LiveStats()
    stats.begin_round()
    for i in range(100):
        dep = "a" if i < 75 else None  # a quarter belongs to no known deployment
        stats.add_prediction(dep, served=True, latency_ms=10, at_ms=1_000)
        stats.add_event(dep, {"x": 1.0}, at_ms=1_000)
    stats.add_deadletter("a", "scorer", "handle", "handler_failed", at_ms=1_000)
    stats.add_deadletter(None, "scorer", "decode", "not_avro", at_ms=1_000)
    stats.end_round(2_000, {"predictions": 1000.0, "events": 1000.0, "deadletter": 10.0})
    point = stats.latest("a")
    assert point["predictions_per_s"] == pytest.approx(750.0)
    assert point["deadletters_per_s"] == pytest.approx(5.0)
    assert point["error_rate"] == pytest.approx(5.0 / 755.0)
    assert point["answers"] is None  # rows without a value
    assert stats.deadletter_reasons(0) == {
        "scorer/handle handler_failed": 1,
        "scorer/decode not_avro": 1,
    }


def test_unknown_rates_and_old_latencies_give_no_figures():
    stats = LiveStats(window_s=10)
    stats.begin_round()
    stats.add_prediction("a", served=True, latency_ms=5, at_ms=0)
    stats.end_round(60_000, {"predictions": None, "events": None, "deadletter": None})
    point = stats.latest("a")
    assert point["predictions_per_s"] == 0.0
    assert point["latency_p50_ms"] is None  # the only sample is older than the window


def test_memory_is_bounded_per_deployment():
    stats = LiveStats(history=5, latencies=50, values=20)
    for r in range(30):
        stats.begin_round()
        for i in range(100):
            stats.add_prediction("a", True, i, at_ms=r * 1000, prediction="1")
            stats.add_event("a", {"x": float(i)}, at_ms=r * 1000)
        stats.end_round(r * 1000, {"predictions": 100.0, "events": 100.0, "deadletter": 0.0})
    assert len(stats.series("a")) == 5
    assert len(stats.feature_values("a", "x")) == 20
    assert stats.latest("a")["latency_samples"] <= 50
    assert stats.latest("a")["answers"] == {"classes": {"1": 1.0}}


def test_health_colours():
    warning = {"severity": "warning", "kind": "data_drift", "metric": "psi", "feature": "age"}
    report = {"window_end": 100_000, "change_point": False}
    assert health([warning], report) == {
        "colour": "amber",
        "reasons": ["warning: data_drift psi (age)"],
    }
    assert health([], report, now_ms=110_000)["colour"] == "green"
    stale = health([], report, now_ms=100_000 + 4 * 60_000)
    assert stale["colour"] == "amber" and "old" in stale["reasons"][0]
    assert health([], {**report, "change_point": True})["colour"] == "amber"


def test_categorical_distribution_shows_unseen_categories():
    base = {"kind": "categorical", "categories": {"a": 3, "b": 1}}
    out = distribution(base, ["a", "c", None, "c"])
    assert out["labels"] == ["a", "b", "c"]
    assert out["baseline"] == [0.75, 0.25, 0.0]
    assert out["current"] == pytest.approx([1 / 3, 0.0, 2 / 3], abs=1e-6)
    assert out["missing"] == 1


def test_window_series_rates():
    report = {
        "window_start": 0,
        "window_end": 60_000,
        "model_version": 1,
        "event_count": 90,
        "prediction_count": 120,
        "schema_violations": 10,
        "weighted_drift": 0.1,
        "prediction_psi": None,
        "metrics": {"accuracy": 0.9},
        "label_coverage": 0.5,
        "late_events": 0,
        "change_point": False,
        "features": [],
        "challengers": [],
    }
    (row,) = window_series([report])
    assert row["predictions_per_s"] == 2.0 and row["deadletter_rate"] == 0.1
