"""Windows: close on the watermark with lateness, late events counted, count windows, state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.drift.aggregate import WindowAggregate
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.windows import Windows
from tests.drift_support import (
    T0,
    categorical_baseline,
    champion_reference,
    content,
    event,
    numeric_baseline,
)

pytestmark = pytest.mark.unit


def lists() -> Windows[list]:
    return Windows(size_ms=1000, lateness_ms=200, factory=lambda seq, start, end: [])


def fill(w: Windows[list], times: list[int]) -> None:
    for win, idx in w.assign_events(times):
        win.aggregate.extend(times[i] for i in idx)


def test_a_window_closes_only_when_the_watermark_passes_its_end_plus_lateness():
    w = lists()
    fill(w, [100, 900, 1100])
    assert w.due() == []  # watermark 900 < end 1000
    fill(w, [1199])
    assert w.due() == []  # watermark 999
    fill(w, [1200])
    closed = w.due()
    assert [(c.start, c.end, sorted(c.aggregate)) for c in closed] == [(0, 1000, [100, 900])]
    assert list(w.open) == [1000]


def test_events_for_a_closed_window_are_counted_late_and_not_added():
    w = lists()
    fill(w, [100, 2500])
    closed = w.due()
    assert [c.start for c in closed] == [0, 2000][:1]
    fill(w, [150, 999, 2100])  # two late ones, one for the open window
    assert w.late == 2
    assert sorted(w.open[2000].aggregate) == [2100, 2500]
    assert w.take_late() == 2 and w.late == 0


def test_an_out_of_order_event_within_lateness_still_counts():
    w = lists()
    fill(w, [1150])  # watermark 950: window [0, 1000) still open
    fill(w, [990])
    assert w.late == 0
    fill(w, [1300])
    assert [sorted(c.aggregate) for c in w.due()] == [[990]]


def test_count_windows_hold_exactly_n_events_even_across_batches():
    w = Windows(1000, 0, lambda seq, start, end: [], count=10)
    seen: list[list[int]] = []
    times = list(range(37))
    for chunk in (times[:7], times[7:25], times[25:]):
        fill(w, chunk)
        seen.extend(sorted(c.aggregate) for c in w.due())
    assert seen == [times[0:10], times[10:20], times[20:30]]
    assert w.open[3].aggregate == times[30:]


def test_window_state_round_trips_through_json():
    w = lists()
    fill(w, [100, 1500, 2300])
    w.due()
    fill(w, [50])
    restored = lists()
    restored.restore(json.loads(json.dumps(w.state(list))), list)
    assert restored.state(list) == w.state(list)
    fill(restored, [3500])
    assert restored.late == 1  # the event at 50 came after [0, 1000) closed
    assert [(c.start, c.aggregate) for c in restored.due()] == [(2000, [2300])]


def _monitor(count: int = 0) -> tuple[DeploymentMonitor, dict]:
    features = [numeric_baseline("x"), categorical_baseline("c", {"a": 60, "b": 40})]
    c = content("m1" * 32, 1, features)
    ref = champion_reference(c, window_seconds=1)
    return DeploymentMonitor(ref, MonitorConfig(window_count=count, lateness_ms=0)), c


def test_monitor_bins_of_closed_windows_add_up_to_the_histogram_of_the_input():
    monitor, c = _monitor(count=100)
    rng = np.random.default_rng(1)
    xs = rng.normal(0, 1, 350)
    cats = rng.choice(["a", "b", "z"], 350)
    events = [
        event("d", i, T0 + i, {"x": float(x), "c": str(k)})
        for i, (x, k) in enumerate(zip(xs, cats, strict=True))
    ]
    closed = []
    for lo in range(0, 350, 64):
        monitor.add_events(events[lo : lo + 64])
        closed += monitor.close_due()
    assert [k.figures.event_count for k in closed] == [100, 100, 100]
    edges = np.asarray(c["baseline"]["features"][0]["bin_edges"])
    expected = np.bincount(np.searchsorted(edges[1:-1], xs[:300], side="right"), minlength=10)
    got = np.sum([k.bins["x"] for k in closed], axis=0)
    assert got.tolist() == expected.tolist()
    assert closed[0].figures.start == T0 and closed[0].figures.end == T0 + 100
    unseen = sum(1 for k in cats[:100] if k == "z") / 100
    assert closed[0].figures.features[1].unseen_rate == pytest.approx(unseen)


def test_monitor_state_round_trips_and_gives_the_same_figures():
    monitor, c = _monitor()
    rng = np.random.default_rng(2)
    events = [
        event("d", i, T0 + i * 3, {"x": float(rng.normal()), "c": "a", "bad": 1.0})
        for i in range(600)
    ]
    events[5]["features"]["x"] = "oops"  # a schema violation: counted, treated as missing
    monitor.add_events(events)
    state = json.loads(json.dumps(monitor.state()))
    again = DeploymentMonitor.from_state(lambda _mid: monitor.reference, monitor.config, state)
    assert again is not None and again.state() == state
    monitor.add_events([event("d", 999, T0 + 5000, {"x": 0.0, "c": "a"})])
    again.add_events([event("d", 999, T0 + 5000, {"x": 0.0, "c": "a"})])
    a, b = monitor.close_due(), again.close_due()
    assert [w.figures for w in a] == [w.figures for w in b]
    assert sum(w.figures.schema_violations for w in a) == 1
    assert sum(w.figures.event_count for w in a) == 600


def test_a_window_restored_from_state_has_its_counts_and_a_missing_feature_starts_empty():
    monitor, _c = _monitor()
    ref = monitor.reference
    w = WindowAggregate(ref, 3, T0, T0 + 1000)
    w.add_events({"x": [0.5] * 50, "c": ["a"] * 49 + [None]}, [T0] * 50)
    state = json.loads(json.dumps(w.state()))
    assert WindowAggregate.from_state(ref, state).state() == state
    del state["stats"]["c"], state["quality"]["c"]
    again = WindowAggregate.from_state(ref, state)
    assert {k: s.count for k, s in again.stats["x"].items()} == {k: 50 for k in w.stats["x"]}
    assert set(again.stats["c"]) == set(w.stats["c"])
    assert all(s.count == 0 for s in again.stats["c"].values())
    assert again.quality["c"].count == 0 and again.quality["x"].count == 50
