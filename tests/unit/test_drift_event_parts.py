"""A batch's events read partly as columns and partly as records count as the records alone do."""

from __future__ import annotations

import random

import pytest

from services.common import serde
from services.common.event_columns import EventColumnsReader
from services.drift.aggregate import WindowAggregate
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from tests.drift_support import (
    T0,
    categorical_baseline,
    champion_reference,
    content,
    event,
    numeric_baseline,
)

pytestmark = pytest.mark.unit


def _monitor(window_count: int) -> DeploymentMonitor:
    features = [
        numeric_baseline("x"),
        numeric_baseline("y", 5.0, 2.0),
        categorical_baseline("car", {"a": 50, "b": 30, "c": 20}),
    ]
    champ = content("c" * 64, 1, features)
    ref = champion_reference(champ)
    return DeploymentMonitor(ref, MonitorConfig(window_count=window_count, lateness_ms=0))


def _events(rng: random.Random, n: int) -> list[dict]:
    """Mostly one shape; some with a missing value, a wrong kind, a feature left out or extra."""
    out = []
    for i in range(n):
        features = {"x": rng.gauss(0, 1), "car": rng.choice("abcd"), "y": rng.gauss(5, 2)}
        roll = rng.random()
        if roll < 0.1:
            features["y"] = None
        elif roll < 0.2:
            features["car"] = 3.5  # a number where a category is expected
        elif roll < 0.25:
            del features["x"]
        elif roll < 0.3:
            features["extra"] = "z"
        out.append(event("d", i, T0 + 37 * i, features))
    return out


@pytest.mark.parametrize("window_count", [0, 40])
def test_event_parts_give_the_state_records_give(window_count):
    rng = random.Random(21)
    records = _events(rng, 300)
    data = [serde.encode("FeatureEvent", r) for r in records]
    reader = EventColumnsReader.for_events(serde.default_serde())
    for r in records[:40:3]:  # some layouts known, others left to the records
        reader.learn(serde.decode(serde.encode("FeatureEvent", r))[1])
    by_records, by_parts = _monitor(window_count), _monitor(window_count)
    taken = 0
    for first in range(0, len(data), 100):
        batch = data[first : first + 100]
        blocks, rest = reader.read(batch)
        taken += sum(b.rows.size for b in blocks)
        parts = [*blocks, *((i, serde.decode(batch[i])[1]) for i in rest)]
        by_parts.add_event_parts(parts)
        by_records.add_events(records[first : first + 100])
    assert 100 < taken < 300, "both paths were exercised"
    assert by_parts.state() == by_records.state()
    closed = [w.figures.event_count for w in by_parts.close_due()]
    assert closed == [w.figures.event_count for w in by_records.close_due()]


def test_a_window_opened_empty_counts_as_one_built_from_the_reference():
    """Windows are opened with ``WindowAggregate.empty`` (sharing bins and grids): the same
    events give the same state as in a window built from the reference, and the window it was
    opened from is untouched."""
    ref = _monitor(0).reference
    records = _events(random.Random(22), 200)
    first = WindowAggregate(ref, 0, 0, 10**15)
    first.add_events(_columns(records[:100]), [r["event_time"] for r in records[:100]])
    before = first.state()
    opened, built = first.empty(1, 5, 9), WindowAggregate(ref, 1, 5, 9)
    assert opened.state() == built.state()
    for w in (opened, built):
        w.add_events(_columns(records[100:]), [r["event_time"] for r in records[100:]])
        w.add_predictions({"prediction_class": ["1", "0"], "prediction_score": [0.9, 0.2]}, 2)
        w.add_joined("m", 1, ["1"], [0.9], ["0"])
        w.add_delays([5.0])
    assert opened.state() == built.state()
    assert opened.figures() == built.figures()
    assert first.state() == before


def _columns(records: list[dict]) -> dict[str, list]:
    names = ("x", "y", "car")
    return {n: [r["features"].get(n) for r in records] for n in names}


def test_windows_filled_by_two_processes_merge_into_the_window_one_would_fill():
    """Each drift process of a sharded group fills its own window; merged, they are the
    window one process fills with all the rows (figures, counts and joined accuracy)."""
    ref = _monitor(0).reference
    records = _events(random.Random(23), 300)
    whole, first, second = (WindowAggregate(ref, 4, 0, 10**15) for _ in range(3))
    for w, rows in [(whole, records), (first, records[:120]), (second, records[120:])]:
        w.add_events(_columns(rows), [r["event_time"] for r in rows])
    for w, half in [(whole, 0), (first, 0), (whole, 1), (second, 1)]:
        classes, scores = (["1", "0", "1"], [0.9, 0.2, 0.6]) if half else (["0"], [0.3])
        w.add_predictions({"prediction_class": classes, "prediction_score": scores}, len(classes))
        w.add_joined(ref.model_id, 1, classes, scores, ["1"] * len(classes))
        w.add_delays([10.0 * (half + 1)])
        w.labelled += len(classes)
    second.change_point = True
    first.merge(second)
    merged, expected = first.state(), whole.state()
    assert merged.pop("change_point") and not expected.pop("change_point")
    assert merged == expected
    figures = first.figures()
    assert figures.event_count == 300 and figures.prediction_count == 4
    assert figures.metrics == whole.figures().metrics and figures.metrics["accuracy"] == 0.5
