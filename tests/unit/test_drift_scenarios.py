"""The drift benchmark's scenario generator: deterministic, and each drift is what it claims."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.drift_champion import Champion, train_champion
from loadtest.drift_scenarios import (
    CATEGORICAL_FEATURE,
    NEW_CATEGORY,
    SHIFTED_FEATURE,
    CreditColumns,
    Scenario,
    ScenarioStream,
)
from services.trainer.credit import credit_rows

pytestmark = pytest.mark.unit
N, START, DELAY, BATCH = 6000, 3000, 700, 1000


@pytest.fixture(scope="module")
def champion() -> Champion:
    return train_champion(rows=2000, seed=3)


@pytest.fixture(scope="module")
def base() -> CreditColumns:
    return CreditColumns.generate(seed=11, n=N)


def stream(champion: Champion, base: CreditColumns, name: str) -> ScenarioStream:
    start = None if name == "no_drift" else START
    return ScenarioStream(Scenario(name, 11, N, start, DELAY), champion, base)


def column(s: ScenarioStream, feature: str) -> np.ndarray:
    values = [e["features"][feature] for b in s.batches(BATCH) for e in b.events]
    return np.array(values, dtype=float if feature == SHIFTED_FEATURE else object)


def test_same_seed_same_records_and_another_seed_differs(champion: Champion) -> None:
    runs = [
        list(ScenarioStream(Scenario("new_category", seed, 1500, 500, 200), champion).batches(400))
        for seed in (5, 5, 6)
    ]
    assert runs[0] == runs[1]
    assert runs[0][0].events != runs[2][0].events


def test_no_drift_is_the_credit_stream(champion: Champion, base: CreditColumns) -> None:
    s = stream(champion, base, "no_drift")
    first = next(s.batches(BATCH)).events[0]
    features, _ = next(credit_rows(1, seed=11))
    assert first["features"] == features


def test_mean_shift_moves_the_feature_half_a_baseline_sd_from_the_start_only(
    champion: Champion, base: CreditColumns
) -> None:
    (feature,) = [f for f in champion.content["baseline"]["features"] if f["name"] == "salary"]
    sd = feature["std"]
    plain = column(stream(champion, base, "no_drift"), SHIFTED_FEATURE)
    shifted = column(stream(champion, base, "mean_shift"), SHIFTED_FEATURE)
    assert np.array_equal(shifted[:START], plain[:START])
    assert np.allclose(shifted[START:] - plain[START:], 0.5 * sd)
    moved = (shifted[START:].mean() - shifted[:START].mean()) / sd
    assert 0.4 < moved < 0.6


def test_variance_doubles_around_the_baseline_mean(champion: Champion, base: CreditColumns) -> None:
    plain = column(stream(champion, base, "no_drift"), SHIFTED_FEATURE)
    wide = column(stream(champion, base, "variance_doubled"), SHIFTED_FEATURE)
    assert np.array_equal(wide[:START], plain[:START])
    ratio = wide[START:].var() / plain[START:].var()
    assert ratio == pytest.approx(2.0, rel=0.05)
    assert abs(wide[START:].mean() - plain[START:].mean()) < 0.05 * plain.std()


def test_new_category_takes_ten_percent_after_the_start(
    champion: Champion, base: CreditColumns
) -> None:
    cars = column(stream(champion, base, "new_category"), CATEGORICAL_FEATURE)
    (car,) = [f for f in champion.content["baseline"]["features"] if f["name"] == "car"]
    assert NEW_CATEGORY not in car["categories"]
    assert not np.any(cars[:START] == NEW_CATEGORY)
    assert np.mean(cars[START:] == NEW_CATEGORY) == pytest.approx(0.10, abs=0.015)


def test_concept_drift_switches_labels_only(champion: Champion, base: CreditColumns) -> None:
    plain, concept = stream(champion, base, "no_drift"), stream(champion, base, "concept_drift")
    for a, b in zip(plain.batches(BATCH), concept.batches(BATCH), strict=True):
        assert [e["features"] for e in a.events] == [e["features"] for e in b.events]
        assert [p["probabilities"] for p in a.predictions] == [
            p["probabilities"] for p in b.predictions
        ]
    before, after = plain.columns.labels, concept.columns.labels
    assert np.array_equal(before[:START], after[:START])
    assert 0.3 < np.mean(before[START:] != after[START:]) < 0.7  # function 2 disagrees often
    function_2 = [y for _, y in credit_rows(N, seed=11, function=2)]
    assert list(after[START:]) == function_2[START:]


def test_actuals_arrive_label_delay_events_later(champion: Champion, base: CreditColumns) -> None:
    s = stream(champion, base, "concept_drift")
    seen = 0
    for b in s.batches(BATCH):
        for a in b.actuals:
            i = int(a["association_id"].rsplit("-", 1)[1])
            assert b.first <= i + DELAY < b.first + len(b.events)
            assert a["actual_time"] == s.event_time(i + DELAY)
            seen += 1
    assert seen == N - DELAY
    assert s.scenario.labels_arrive == START + DELAY


@pytest.mark.parametrize(
    ("name", "start", "delay"),
    [("nope", None, 0), ("no_drift", 10, 0), ("mean_shift", None, 0), ("mean_shift", N, 0)]
    + [("mean_shift", 10, -1)],
)
def test_bad_scenarios_are_refused(name: str, start: int | None, delay: int) -> None:
    with pytest.raises(ValueError):
        Scenario(name, 1, N, start, delay)
