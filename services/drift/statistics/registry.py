"""Which statistics apply to a feature baseline, and the prediction baseline seen as features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.errors import ConfigError
from services.drift.statistics.base import Statistic
from services.drift.statistics.chi_square import ChiSquare
from services.drift.statistics.jensen_shannon import JensenShannon
from services.drift.statistics.ks import KS
from services.drift.statistics.psi import PSI

NUMERIC: tuple[type[Statistic], ...] = (PSI, KS, JensenShannon)
CATEGORICAL: tuple[type[Statistic], ...] = (PSI, JensenShannon, ChiSquare)


def for_feature(baseline_feature: Mapping[str, Any]) -> dict[str, Statistic]:
    """A fresh instance of every statistic applicable to the feature, keyed by statistic name."""
    kind = baseline_feature.get("kind")
    if kind == "numeric":
        classes = NUMERIC
    elif kind == "categorical":
        classes = CATEGORICAL
    else:
        raise ConfigError(f"feature {baseline_feature.get('name')!r}: unknown kind {kind!r}")
    return {cls.name: cls(baseline_feature) for cls in classes}  # type: ignore[call-arg]


def prediction_features(prediction_baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prediction baseline as feature baselines: ``prediction_class`` and ``prediction_score``.

    Class counts become a categorical feature, score bins a numeric one; either is left out when
    the baseline does not have it (regression has no classes).
    """
    features: list[dict[str, Any]] = []
    classes = prediction_baseline.get("class_counts") or {}
    if classes:
        features.append(
            {"name": "prediction_class", "kind": "categorical", "bin_edges": [], "bin_counts": []}
            | {"categories": dict(classes), "count": sum(classes.values())}
        )
    edges = prediction_baseline.get("bin_edges") or []
    if edges:
        counts = list(prediction_baseline.get("bin_counts") or [])
        features.append(
            {"name": "prediction_score", "kind": "numeric", "bin_edges": list(edges)}
            | {"bin_counts": counts, "categories": {}, "count": sum(counts)}
            | {"min": edges[0], "max": edges[-1]}
        )
    return features
