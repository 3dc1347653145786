"""Monitoring baseline: sketch shapes, counts that add up, prediction histogram, importances."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.baseline import (
    bin_counts,
    compute_baseline,
    permutation_importances,
    prediction_sketch,
    quantile_edges,
)
from services.trainer.dataset import FeatureSpec, load_dataset
from services.trainer.training import train

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def trained():
    ds = load_dataset("builtin:credit?rows=2000&seed=2")
    return train(ds, "hgb", space={"max_leaf_nodes": [15]}, cv_folds=2)


def test_quantile_edges_and_counts():
    values = np.arange(1000, dtype=float)
    edges = quantile_edges(values)
    assert len(edges) == 11 and edges[0] == 0.0 and edges[-1] == 999.0
    assert bin_counts(values, edges) == [100] * 10
    few = np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    edges = quantile_edges(few)
    assert edges == sorted(set(edges)) and edges[0] == 1.0 and edges[-1] == 2.0
    assert sum(bin_counts(few, edges)) == 5
    assert quantile_edges(np.full(7, 3.0)) == [3.0, 3.0]
    assert bin_counts(np.full(7, 3.0), [3.0, 3.0]) == [7]
    # Out-of-range values fall into the open outer bins, as in the drift service.
    assert bin_counts(np.array([-5.0, 50.0]), [0.0, 1.0, 2.0]) == [1, 1]


def test_feature_sketches_count_rows_and_missing():
    specs = (FeatureSpec("n", "numeric"), FeatureSpec("c", "categorical", ("a", "b")))
    x = np.array(
        [[1.0, "a"], [2.0, "b"], [np.nan, "a"], [4.0, "missing"], [5.0, "a"]], dtype=object
    )
    base = compute_baseline(
        x,
        specs,
        task="regression",
        classes=[],
        predictions=np.array([0.1, 0.2, 0.3]),
        probabilities=None,
        importances={"n": 0.7, "c": 0.3},
        missing_token="missing",
    )
    n, c = base["features"]
    assert n["count"] == 4 and sum(n["bin_counts"]) == 4 and n["missing_rate"] == 0.2
    assert (n["min"], n["max"], n["mean"]) == (1.0, 5.0, 3.0) and n["std"] > 0
    assert len(n["bin_counts"]) == len(n["bin_edges"]) - 1 and n["categories"] == {}
    assert c["categories"] == {"a": 3, "b": 1} and c["missing_rate"] == 0.2
    assert c["std"] is None and c["mean"] is None and c["bin_edges"] == []
    assert sum(base["prediction"]["bin_counts"]) == 3 and base["prediction"]["class_counts"] == {}
    assert base["importances"] == {"n": 0.7, "c": 0.3}


def test_binary_prediction_histogram():
    proba = np.array([[0.95, 0.05], [0.5, 0.5], [0.0, 1.0], [0.31, 0.69]])
    sketch = prediction_sketch("classification", ["0", "1"], np.array(["0", "1", "1", "1"]), proba)
    assert sketch["bin_edges"][0] == 0.0 and sketch["bin_edges"][-1] == 1.0
    assert sketch["bin_counts"] == [1, 0, 0, 0, 0, 1, 1, 0, 0, 1]
    assert sketch["class_counts"] == {"0": 1, "1": 3}


def test_baseline_on_a_trained_model(trained):
    pipeline = trained.pipeline
    names = [s.name for s in trained.feature_specs]
    importances = permutation_importances(
        pipeline, trained.x_holdout, trained.y_holdout, names, seed=1, max_rows=300
    )
    assert sum(importances.values()) == pytest.approx(1.0)
    assert min(importances.values()) >= 0.0
    # Function 0 labels by age alone.
    assert max(importances, key=importances.get) == "age" and importances["age"] > 0.8
    base = compute_baseline(
        trained.x_train,
        trained.feature_specs,
        task="classification",
        classes=trained.classes,
        predictions=pipeline.predict(trained.x_holdout),
        probabilities=pipeline.predict_proba(trained.x_holdout),
        importances=importances,
    )
    rows = len(trained.x_train)
    for f in base["features"]:
        counted = sum(f["bin_counts"]) if f["kind"] == "numeric" else sum(f["categories"].values())
        assert counted == f["count"] == rows
    assert [f["name"] for f in base["features"]] == names
    pred = base["prediction"]
    assert sum(pred["bin_counts"]) == sum(pred["class_counts"].values()) == len(trained.x_holdout)
    assert len(pred["bin_edges"]) == 11
