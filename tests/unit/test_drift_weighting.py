"""Importance-weighted drift: pairs per feature and the weighted-mean deployment score."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.drift.weighting import FeatureDrift, weighted_drift

pytestmark = pytest.mark.unit


def test_score_is_the_importance_weighted_mean() -> None:
    r = weighted_drift({"a": 0.4, "b": 0.1, "c": 0.0}, {"a": 0.5, "b": 0.3, "c": 0.2})
    assert r.score == pytest.approx(0.5 * 0.4 + 0.3 * 0.1)
    assert r.features["a"] == FeatureDrift(0.4, 0.5)


def test_important_feature_drift_weighs_more() -> None:
    imp = {"important": 0.9, "minor": 0.1}
    assert (
        weighted_drift({"important": 0.3, "minor": 0.0}, imp).score
        > weighted_drift({"important": 0.0, "minor": 0.3}, imp).score
    )


def test_features_without_values_are_left_out_and_weights_renormalised() -> None:
    r = weighted_drift({"a": 0.2, "b": None}, {"a": 0.25, "b": 0.75})
    assert r.score == pytest.approx(0.2)
    assert r.features["b"] == FeatureDrift(None, 0.75)
    assert weighted_drift({"a": None}, {"a": 1.0}).score is None


def test_importances_are_normalised_and_missing_ones_are_zero() -> None:
    r = weighted_drift({"a": 1.0, "b": 0.0, "new": 5.0}, {"a": 2.0, "b": 2.0})
    assert r.features["a"].importance == pytest.approx(0.5)
    assert r.features["new"].importance == 0.0
    assert r.score == pytest.approx(0.5)


def test_no_importances_means_equal_weights() -> None:
    r = weighted_drift({"a": 0.3, "b": 0.1}, {})
    assert r.score == pytest.approx(0.2)
    assert weighted_drift({}, {}).score is None


def test_negative_importance_is_rejected() -> None:
    with pytest.raises(ConfigError):
        weighted_drift({"a": 0.1}, {"a": -0.5, "b": 1.5})
