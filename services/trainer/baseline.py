"""The monitoring baseline a model carries: feature sketches, prediction distribution, importances.

Numeric features get up to 10 quantile bins (duplicate edges dropped; the first edge is the
minimum and the last the maximum) counted with the same rule the drift service uses
(``searchsorted`` on the interior edges, so the outer bins are open-ended). Categorical features
get value counts. Counts cover present values only; missing values show up in ``missing_rate``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.inspection import permutation_importance

from services.trainer.dataset import FeatureSpec

QUANTILE_BINS = 10
PROBABILITY_EDGES = [i / 10 for i in range(11)]
MAX_IMPORTANCE_ROWS = 2_000


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts of values per bin, outer bins open-ended, the drift service's rule."""
    inner = np.asarray(edges[1:-1], dtype=float)
    idx = np.searchsorted(inner, values, side="right")
    return np.bincount(idx, minlength=max(len(edges) - 1, 1)).astype(int).tolist()


def quantile_edges(values: np.ndarray, bins: int = QUANTILE_BINS) -> list[float]:
    """Deduplicated quantile edges from min to max; two equal edges for a constant column."""
    if values.size == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        edges = np.repeat(edges, 2)
    return [float(e) for e in edges]


def _numeric_sketch(name: str, column: np.ndarray) -> dict[str, Any]:
    values = np.asarray(column, dtype=float)
    present = values[~np.isnan(values)]
    edges = quantile_edges(present)
    empty = present.size == 0
    return {
        "name": name,
        "kind": "numeric",
        "count": int(present.size),
        "missing_rate": (values.size - present.size) / values.size if values.size else 0.0,
        "min": None if empty else float(present.min()),
        "max": None if empty else float(present.max()),
        "mean": None if empty else float(present.mean()),
        "std": None if empty else float(present.std()),
        "bin_edges": edges,
        "bin_counts": bin_counts(present, edges) if edges else [],
        "categories": {},
    }


def _categorical_sketch(name: str, column: np.ndarray, missing_token: str | None) -> dict[str, Any]:
    values = [v for v in column if v is not None and v != missing_token]
    counts = Counter(str(v) for v in values)
    return {
        "name": name,
        "kind": "categorical",
        "count": len(values),
        "missing_rate": (len(column) - len(values)) / len(column) if len(column) else 0.0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "bin_edges": [],
        "bin_counts": [],
        "categories": dict(sorted(counts.items())),
    }


def prediction_sketch(
    task: str, classes: Sequence[str], predictions: np.ndarray, probabilities: np.ndarray | None
) -> dict[str, Any]:
    """Class counts and a positive-probability histogram (binary), or value bins (regression)."""
    if task == "regression":
        values = np.asarray(predictions, dtype=float)
        edges = quantile_edges(values)
        return {
            "bin_edges": edges,
            "bin_counts": bin_counts(values, edges) if edges else [],
            "class_counts": {},
        }
    counts = Counter(str(p) for p in predictions)
    class_counts = {c: int(counts.get(c, 0)) for c in classes}
    if len(classes) == 2 and probabilities is not None:
        positive = np.asarray(probabilities, dtype=float)[:, 1]
        return {
            "bin_edges": list(PROBABILITY_EDGES),
            "bin_counts": bin_counts(positive, PROBABILITY_EDGES),
            "class_counts": class_counts,
        }
    return {"bin_edges": [], "bin_counts": [], "class_counts": class_counts}


def permutation_importances(
    pipeline: Any,
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    seed: int = 0,
    max_rows: int = MAX_IMPORTANCE_ROWS,
) -> dict[str, float]:
    """Permutation importances on at most ``max_rows`` rows, negatives clipped, summing to 1."""
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        keep = np.sort(rng.choice(len(x), size=max_rows, replace=False))
        x, y = x[keep], y[keep]
    result = permutation_importance(pipeline, x, y, n_repeats=3, random_state=seed, n_jobs=1)
    raw = np.clip(result.importances_mean, 0.0, None)
    total = float(raw.sum())
    # No feature helps (a constant model): weigh all alike rather than divide by zero.
    weights = raw / total if total > 0 else np.full(len(raw), 1.0 / max(len(raw), 1))
    return {name: float(w) for name, w in zip(feature_names, weights, strict=True)}


def compute_baseline(
    x: np.ndarray,
    feature_specs: Sequence[FeatureSpec],
    *,
    task: str,
    classes: Sequence[str],
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    importances: Mapping[str, float],
    missing_token: str | None = None,
) -> dict[str, Any]:
    """The ``baseline`` of a ModelContent.

    ``x`` is the feature matrix (columns in spec order) the sketches describe, normally the
    training split; ``predictions`` / ``probabilities`` are normally on the holdout, because
    predictions on training rows are over-confident and would make live traffic look drifted.
    ``missing_token`` is a category value that means "missing" (the training matrix's filler).
    """
    features = []
    for i, spec in enumerate(feature_specs):
        column = x[:, i]
        if spec.kind == "numeric":
            features.append(_numeric_sketch(spec.name, column))
        else:
            features.append(_categorical_sketch(spec.name, column, missing_token))
    return {
        "features": features,
        "prediction": prediction_sketch(task, classes, predictions, probabilities),
        "importances": {s.name: float(importances.get(s.name, 0.0)) for s in feature_specs},
    }
