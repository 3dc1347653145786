"""The load generator's pure parts: the burst pattern and the drifted stream."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.loadgen import columns_for, rate_at

pytestmark = pytest.mark.unit


def test_burst_alternates_four_times_and_a_quarter_of_the_rate() -> None:
    assert [rate_at("burst", 100, t) for t in (0.0, 1.9, 2.0, 3.9, 4.0)] == [400, 400, 25, 25, 400]
    assert {rate_at("steady", 100, t) for t in (0.0, 2.5, 9.0)} == {100}


def test_drift_scenarios_change_the_second_half_only() -> None:
    plain = columns_for("steady", 4000, seed=3)
    shifted = columns_for("mean_shift", 4000, seed=3)
    before = shifted.features["salary"][:2000] - plain.features["salary"][:2000]
    after = shifted.features["salary"][2000:] - plain.features["salary"][2000:]
    assert np.all(before == 0) and np.all(after > 0)
    concept = columns_for("concept_drift", 4000, seed=3)
    assert np.array_equal(concept.labels[:2000], plain.labels[:2000])
    assert not np.array_equal(concept.labels[2000:], plain.labels[2000:])
