"""One contract suite run over every drift statistic and each feature kind it applies to."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import kstwo

from services.common.errors import ConfigError
from services.drift import statistics
from services.drift.statistics import KS, PSI, ChiSquare, JensenShannon
from services.drift.statistics.binning import Column
from services.drift.statistics.jensen_shannon import distance
from services.drift.statistics.ks import EXACT_BELOW, p_value
from services.drift.statistics.registry import CATEGORICAL, NUMERIC

pytestmark = pytest.mark.unit

CATEGORIES = np.array(["a", "b", "c", "d", "e", "f"])
PROBS = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])


def numeric_baseline(sample: np.ndarray, bins: int = 10, name: str = "x") -> dict[str, Any]:
    """A numeric feature baseline built the way the trainer describes it (quantile edges)."""
    edges = np.quantile(sample, np.linspace(0, 1, bins + 1))
    counts, _ = np.histogram(sample, edges)
    return {
        "name": name,
        "kind": "numeric",
        "count": int(sample.size),
        "missing_rate": 0.0,
        "min": float(edges[0]),
        "max": float(edges[-1]),
        "mean": float(sample.mean()),
        "std": float(sample.std()),
        "bin_edges": edges.tolist(),
        "bin_counts": counts.tolist(),
        "categories": {},
    }


def categorical_baseline(sample: np.ndarray, name: str = "c") -> dict[str, Any]:
    """A categorical feature baseline (frequencies per category)."""
    values, counts = np.unique(sample, return_counts=True)
    return {
        "name": name,
        "kind": "categorical",
        "count": int(sample.size),
        "missing_rate": 0.0,
        "bin_edges": [],
        "bin_counts": [],
        "categories": dict(zip(values.tolist(), counts.tolist(), strict=True)),
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
    }


def reference(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """A sample from the reference distribution of a kind."""
    if kind == "numeric":
        return rng.normal(0.0, 1.0, n)
    return rng.choice(CATEGORIES, size=n, p=PROBS)


def baseline(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """A baseline from a 10,000-row reference sample."""
    sample = reference(kind, rng, 10_000)
    return numeric_baseline(sample) if kind == "numeric" else categorical_baseline(sample)


def shifted(kind: str, how: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """A drifted sample: mean + 0.5 sd, variance x2, or a new category at 10%."""
    if how == "mean":
        return rng.normal(0.5, 1.0, n)
    if how == "variance":
        return rng.normal(0.0, np.sqrt(2.0), n)
    base = reference(kind, rng, n).astype(object)
    base[rng.random(n) < 0.1] = "new"
    return base


def badness(cls: type, value: float) -> float:
    """Larger means more drift, whatever the statistic's direction."""
    return value if cls.suggested.direction == "above" else -value


def flagged(cls: type, value: float) -> bool:
    """Whether a value is beyond the statistic's suggested warning threshold."""
    return badness(cls, value) >= badness(cls, cls.suggested.warning)


CASES = [
    (PSI, "numeric"),
    (PSI, "categorical"),
    (JensenShannon, "numeric"),
    (JensenShannon, "categorical"),
    (KS, "numeric"),
    (ChiSquare, "categorical"),
]
SHIFTS = {"numeric": ["mean", "variance"], "categorical": ["new_category"]}
IDS = [f"{cls.name}-{kind}" for cls, kind in CASES]


def test_the_contract_covers_every_registered_statistic() -> None:
    registered = {(cls, "numeric") for cls in NUMERIC} | {
        (cls, "categorical") for cls in CATEGORICAL
    }
    assert registered == set(CASES)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_identical_distribution_is_low_drift(cls: type, kind: str) -> None:
    rng = np.random.default_rng(11)
    stat = cls(baseline(kind, rng))
    stat.update(reference(kind, rng, 2_000))
    value = stat.get()
    assert value is not None
    assert not flagged(cls, value)
    if cls is PSI:
        assert value < 0.1
    elif cls is JensenShannon:
        assert value < 0.08
    else:  # p-values: not tiny for a decent n
        assert value > 0.01


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_shifted_distribution_is_clearly_higher(cls: type, kind: str) -> None:
    rng = np.random.default_rng(12)
    base = baseline(kind, rng)
    same = cls(base)
    same.update(reference(kind, rng, 2_000))
    for how in SHIFTS[kind]:
        drifted = cls(base)
        drifted.update(shifted(kind, how, rng, 2_000))
        value = drifted.get()
        assert value is not None
        assert flagged(cls, value), (how, value)
        assert badness(cls, value) > badness(cls, same.get()), how


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_one_batch_equals_several_batches(cls: type, kind: str) -> None:
    rng = np.random.default_rng(13)
    base = baseline(kind, rng)
    values = shifted(kind, SHIFTS[kind][0], rng, 3_000)
    whole, parts = cls(base), cls(base)
    whole.update(values)
    for chunk in np.array_split(values, 7):
        parts.update(chunk)
    parts.update(values[:0])
    assert whole.get() == parts.get()
    assert whole.state() == parts.state()


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_state_round_trip_gives_the_same_value(cls: type, kind: str) -> None:
    rng = np.random.default_rng(14)
    base = baseline(kind, rng)
    stat = cls(base)
    stat.update(reference(kind, rng, 1_500))
    restored = cls.from_state(base, json.loads(json.dumps(stat.state())))
    assert restored.get() == stat.get()
    more = shifted(kind, SHIFTS[kind][0], rng, 800)
    stat.update(more)
    restored.update(more)
    assert restored.get() == stat.get()


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_merged_halves_equal_the_whole_window(cls: type, kind: str) -> None:
    rng = np.random.default_rng(16)
    base = baseline(kind, rng)
    values = shifted(kind, SHIFTS[kind][0], rng, 2_000)
    whole, first, second = cls(base), cls(base), cls(base)
    whole.update(values)
    first.update(values[:700])
    second.update(values[700:])
    first.merge(second)
    assert (first.get(), first.state()) == (whole.get(), whole.state())
    if kind == "numeric":  # windows on other bins do not add up
        other = cls(numeric_baseline(reference(kind, rng, 1_000), bins=5))
    else:
        other = cls(categorical_baseline(np.array(["a", "z"])))
    with pytest.raises(ConfigError):
        first.merge(other)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_empty_is_a_fresh_window_independent_of_the_original(cls: type, kind: str) -> None:
    rng = np.random.default_rng(15)
    base = baseline(kind, rng)
    stat = cls(base)
    stat.update(shifted(kind, SHIFTS[kind][0], rng, 1_500))
    before = (stat.get(), stat.state())
    blank = stat.empty()
    assert (blank.count, blank.get(), blank.state()) == (0, None, cls(base).state())
    values = reference(kind, rng, 1_200)
    blank.update(values)
    fresh = cls(base)
    fresh.update(values)
    assert (blank.get(), blank.state()) == (fresh.get(), fresh.state())
    assert (stat.get(), stat.state()) == before, "the original window is untouched"


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_state_from_another_baseline_is_rejected(cls: type, kind: str) -> None:
    rng = np.random.default_rng(15)
    stat = cls(baseline(kind, rng))
    state = stat.state()
    state["counts"] = state["counts"][:-1]
    with pytest.raises(ConfigError):
        cls.from_state(baseline(kind, rng), state)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_empty_or_small_window_gives_none(cls: type, kind: str) -> None:
    """None until the window has the observations the statistic needs: ``min_count``, or
    for PSI, which pools bins below it, ``needed()``."""
    rng = np.random.default_rng(16)
    stat = cls(baseline(kind, rng), min_count=100)
    needed = stat.needed() if cls is PSI else 100
    assert 1 < needed <= 100
    assert stat.get() is None
    stat.update([])
    assert stat.get() is None
    stat.update(reference(kind, rng, needed - 1))
    assert stat.get() is None
    stat.update(reference(kind, rng, 1))
    assert stat.get() is not None


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_missing_values_are_ignored(cls: type, kind: str) -> None:
    rng = np.random.default_rng(17)
    base = baseline(kind, rng)
    values = list(shifted(kind, SHIFTS[kind][0], rng, 1_000))
    with_missing = values[:500] + [None, float("nan")] * 50 + values[500:]
    clean, dirty = cls(base), cls(base)
    clean.update(values)
    dirty.update(with_missing)
    assert dirty.get() == clean.get()
    assert dirty.count == clean.count == 1_000


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=IDS)
def test_a_shared_column_counts_as_its_values(cls: type, kind: str) -> None:
    """One Column feeds every statistic of a feature: each reads it as it would the values."""
    rng = np.random.default_rng(18)
    base = baseline(kind, rng)
    values = list(shifted(kind, SHIFTS[kind][0], rng, 1_000)) + [None, float("nan")] * 20
    column = Column(values)
    plain, shared, again = cls(base), cls(base), cls(base)
    plain.update(values)
    shared.update(column)
    again.update(column)  # a second reader of the same column: nothing consumed or changed
    assert shared.state() == plain.state() == again.state()
    assert shared.get() == plain.get()


def test_statistics_that_do_not_apply_refuse_at_construction() -> None:
    rng = np.random.default_rng(18)
    with pytest.raises(ConfigError, match="categorical"):
        ChiSquare(baseline("numeric", rng))
    with pytest.raises(ConfigError, match="numeric"):
        KS(baseline("categorical", rng))


def test_for_feature_picks_the_applicable_statistics() -> None:
    rng = np.random.default_rng(19)
    assert set(statistics.for_feature(baseline("numeric", rng))) == {"psi", "ks", "jensen_shannon"}
    chosen = statistics.for_feature(baseline("categorical", rng))
    assert set(chosen) == {"psi", "jensen_shannon", "chi_square"}
    with pytest.raises(ConfigError):
        statistics.for_feature({"name": "x", "kind": "text"})


def test_prediction_baseline_becomes_features() -> None:
    pred = {
        "bin_edges": [0.0, 0.25, 0.5, 0.75, 1.0],
        "bin_counts": [40, 10, 10, 40],
        "class_counts": {"0": 55, "1": 45},
    }
    features = {f["name"]: f for f in statistics.prediction_features(pred)}
    assert set(features) == {"prediction_class", "prediction_score"}
    psi = statistics.PSI(features["prediction_class"], min_count=10)
    psi.update(["1"] * 90 + ["0"] * 10)
    assert psi.get() > 0.25
    ks = statistics.KS(features["prediction_score"], min_count=10)
    ks.update(np.full(100, 0.6))
    assert ks.get() < 1e-6
    assert statistics.prediction_features({"bin_edges": [], "class_counts": {}}) == []


def test_numeric_bins_are_open_ended_and_half_open_like_numpy() -> None:
    base = {
        "name": "x",
        "kind": "numeric",
        "bin_edges": [0.0, 1.0, 2.0, 3.0],
        "bin_counts": [1] * 3,
    }
    psi = PSI(base, min_count=1)
    psi.update([-100.0, 0.0, 0.999, 1.0, 2.0, 3.0, 100.0, np.inf])
    assert psi.state()["counts"] == [3, 1, 4]


def test_ks_handles_discrete_features_with_tied_edges() -> None:
    rng = np.random.default_rng(20)
    base = numeric_baseline(rng.poisson(3, 10_000).astype(float))
    assert len(set(base["bin_edges"])) < len(base["bin_edges"])  # ties make duplicate edges
    same, moved = KS(base), KS(base)
    same.update(rng.poisson(3, 2_000))
    moved.update(rng.poisson(3.5, 2_000))
    assert same.get() > 0.01
    assert moved.get() < 1e-6


@pytest.mark.parametrize("n", [1000, 1900, 5000, 20_000])
def test_ks_asymptotic_p_value_stays_within_5_percent_of_the_exact_one(n: int) -> None:
    assert n >= EXACT_BELOW
    for p in (0.5, 0.1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8):
        d = float(kstwo.isf(p, n))
        assert p_value(d, n) == pytest.approx(p, rel=0.05), (n, p)


def test_ks_p_value_is_exact_below_the_cut_over() -> None:
    for n, d in ((50, 0.3), (999, 0.05)):
        assert n < EXACT_BELOW
        assert p_value(d, n) == float(kstwo.sf(d, n))


def test_js_distance_is_scipys() -> None:
    """``jensen_shannon.distance`` computes what scipy's jensenshannon (base 2) gives."""
    rng = np.random.default_rng(17)
    for i in range(300):
        k = int(rng.integers(2, 30))
        p = rng.integers(0, 50, k).astype(float)
        q = rng.integers(0, 50, k).astype(float)
        p[0], q[-1] = p[0] + 1, q[-1] + 1
        if i % 3 == 0:
            p[rng.integers(0, k)] = 0.0  # an empty bin on one side
        expected = float(np.clip(np.nan_to_num(jensenshannon(p, q, base=2)), 0.0, 1.0))
        assert distance(p, q) == pytest.approx(expected, abs=1e-12)
    assert distance(np.array([2.0, 0.0]), np.array([0.0, 5.0])) == 1.0
    assert distance(np.array([3.0, 3.0]), np.array([1.0, 1.0])) == 0.0
