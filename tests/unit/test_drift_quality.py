"""Data quality counters: missing, out-of-range (with margin) and unseen-category rates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.common.errors import ConfigError
from services.drift.quality import FeatureQuality
from services.drift.statistics.binning import Column

pytestmark = pytest.mark.unit

NUMERIC = {"name": "x", "kind": "numeric", "min": 0.0, "max": 10.0, "bin_edges": [0.0, 10.0]}
CATEGORICAL = {"name": "c", "kind": "categorical", "categories": {"a": 5, "b": 5}}


def test_numeric_rates() -> None:
    q = FeatureQuality(NUMERIC)
    q.update(np.array([0.0, 10.0, 5.0, -0.1, 10.1, np.nan]))
    q.update([None, 3.0])
    got = q.get()
    assert got.count == 8
    assert got.missing_rate == pytest.approx(2 / 8)
    assert got.out_of_range_rate == pytest.approx(2 / 6)
    assert got.unseen_rate == 0.0


def test_margin_widens_the_range() -> None:
    q = FeatureQuality(NUMERIC, margin=0.5)
    q.update([-0.4, 10.4, -0.6, 10.6])
    assert q.get().out_of_range_rate == pytest.approx(0.5)


def test_categorical_rates() -> None:
    q = FeatureQuality(CATEGORICAL)
    q.update(np.array(["a", "b", "z", None, float("nan"), "a", 3], dtype=object))
    got = q.get()
    assert got.count == 7
    assert got.missing_rate == pytest.approx(2 / 7)
    assert got.unseen_rate == pytest.approx(2 / 5)
    assert got.out_of_range_rate == 0.0


@pytest.mark.parametrize(
    ("baseline", "values"),
    [
        (NUMERIC, [0.0, 10.0, 5.0, -0.1, 10.1, np.nan, None, 3.0]),
        (CATEGORICAL, ["a", "b", "z", None, float("nan"), "a", 3]),
    ],
)
def test_a_shared_column_counts_as_its_values(baseline, values) -> None:
    plain, shared = FeatureQuality(baseline), FeatureQuality(baseline)
    plain.update(values)
    column = Column(values)
    shared.update(column)
    assert shared.get() == plain.get()
    shared.update(column)  # read again: the same counts once more
    plain.update(values)
    assert shared.get() == plain.get()


def test_empty_window_has_no_rates() -> None:
    got = FeatureQuality(NUMERIC).get()
    assert got.count == 0
    assert got.missing_rate is None and got.out_of_range_rate is None and got.unseen_rate is None
    only_missing = FeatureQuality(CATEGORICAL)
    only_missing.update([None, None])
    assert only_missing.get().missing_rate == 1.0
    assert only_missing.get().unseen_rate is None


@pytest.mark.parametrize("base", [NUMERIC, CATEGORICAL], ids=["numeric", "categorical"])
def test_batches_and_state_round_trip(base: dict) -> None:
    rng = np.random.default_rng(3)
    if base["kind"] == "numeric":
        values = list(rng.normal(5, 4, 1_000))
    else:
        values = list(rng.choice(["a", "b", "z"], 1_000))
    values[::17] = [None] * len(values[::17])
    whole, parts = FeatureQuality(base, margin=0.25), FeatureQuality(base, margin=0.25)
    whole.update(values)
    for chunk in (values[:300], values[300:301], values[301:]):
        parts.update(chunk)
    assert whole.get() == parts.get()
    restored = FeatureQuality.from_state(base, json.loads(json.dumps(parts.state())))
    assert restored.get() == whole.get()
    restored.update(values[:10])
    whole.update(values[:10])
    assert restored.get() == whole.get()


@pytest.mark.parametrize("base", [NUMERIC, CATEGORICAL], ids=["numeric", "categorical"])
def test_merged_halves_equal_the_whole_window(base: dict) -> None:
    values = [0.5, None, 30.0, 2.0] if base["kind"] == "numeric" else ["a", None, "z", "b"]
    whole, first, second = (FeatureQuality(base) for _ in range(3))
    whole.update(values)
    first.update(values[:1])
    second.update(values[1:])
    first.merge(second)
    assert first.get() == whole.get()


@pytest.mark.parametrize("base", [NUMERIC, CATEGORICAL], ids=["numeric", "categorical"])
def test_empty_is_fresh_counters_independent_of_the_original(base: dict) -> None:
    values = [0.5, None, 30.0] if base["kind"] == "numeric" else ["a", None, "z"]
    q = FeatureQuality(base, margin=0.25)
    q.update(values)
    before = q.get()
    blank = q.empty()
    assert blank.state() == FeatureQuality(base, margin=0.25).state()
    blank.update(values[:1])
    assert blank.get().count == 1
    assert q.get() == before


def test_bad_baselines_are_rejected() -> None:
    with pytest.raises(ConfigError):
        FeatureQuality({"name": "x", "kind": "numeric", "min": None, "max": 1.0})
    with pytest.raises(ConfigError):
        FeatureQuality({"name": "x", "kind": "image"})
