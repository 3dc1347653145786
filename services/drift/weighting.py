"""Importance-weighted drift: each feature's drift next to its importance, and one score.

The deployment score is the importance-weighted mean of the per-feature drift values,
``sum_i w_i d_i / sum_i w_i``, over the features that have a drift value this window (a feature
with too few observations is left out and the weights renormalised, rather than counted as
zero drift). Importances are normalised to sum 1; negative ones are rejected; a model without
importances gets equal weights. Use one statistic for all features (PSI or JS) so the values
share a scale.

>>> r = weighted_drift({"age": 0.3, "income": 0.1}, {"age": 0.25, "income": 0.75})
>>> round(r.score, 3), r.features["age"]
(0.15, FeatureDrift(drift=0.3, importance=0.25))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.errors import ConfigError


@dataclass(frozen=True)
class FeatureDrift:
    """A feature's drift value (None: too few observations) and its importance."""

    drift: float | None
    importance: float


@dataclass(frozen=True)
class WeightedDrift:
    """Per-feature (drift, importance) pairs and the deployment-level weighted score."""

    features: dict[str, FeatureDrift]
    score: float | None  # None when no feature with positive importance has a value


def normalised(importances: Mapping[str, float], features: list[str]) -> dict[str, float]:
    """Importances of ``features`` scaled to sum 1 (equal weights when none are given)."""
    raw = {f: float(importances.get(f, 0.0)) for f in features}
    if any(w < 0 or not math.isfinite(w) for w in raw.values()):
        raise ConfigError("feature importances must be finite and >= 0")
    total = sum(raw.values())
    if not importances or total <= 0:
        return dict.fromkeys(features, 1.0 / len(features)) if features else {}
    return {f: w / total for f, w in raw.items()}


def weighted_drift(
    drift: Mapping[str, float | None], importances: Mapping[str, float]
) -> WeightedDrift:
    """Pair each feature's drift with its importance and compute the weighted mean score."""
    names = sorted(set(drift) | set(importances))
    weights = normalised(importances, names)
    features = {f: FeatureDrift(drift.get(f), weights[f]) for f in names}
    present = [
        (fd.drift, fd.importance)
        for fd in features.values()
        if fd.drift is not None and math.isfinite(fd.drift) and fd.importance > 0
    ]
    total = sum(w for _, w in present)
    score = sum(d * w for d, w in present) / total if total > 0 else None
    return WeightedDrift(features, score)
