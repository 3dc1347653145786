"""Training: each estimator learns builtin:credit; split, search and lineage are recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.common.errors import ConfigError
from services.trainer.dataset import from_records, load_dataset
from services.trainer.training import train

pytestmark = pytest.mark.unit

TINY = {"hgb": {"max_leaf_nodes": [15]}, "rf": {"max_depth": [8]}, "logreg": {"C": [1.0]}}


@pytest.fixture(scope="module")
def credit():
    return load_dataset("builtin:credit?rows=2500&seed=11")


@pytest.mark.parametrize("estimator", ["hgb", "rf"])
def test_tree_models_learn_function_0(credit, estimator):
    result = train(credit, estimator, space=TINY[estimator], seed=3)
    m = result.metrics
    assert m["roc_auc"] > 0.95 and m["accuracy"] > 0.95 and m["f1"] > 0.95
    assert 0 <= m["log_loss"] < 0.5 and m["cv_roc_auc"] > 0.9
    assert {"precision", "recall"} <= set(m)
    assert result.classes == ["0", "1"] and result.task == "classification"


def test_logreg_learns_a_linear_rule():
    # Function 0 (age band) is not linear; function 8 (disposable income) is.
    ds = load_dataset("builtin:credit?rows=2500&seed=11&function=8")
    result = train(ds, "logreg", space=TINY["logreg"])
    assert result.metrics["roc_auc"] > 0.95
    assert json.loads(result.params["C"]) == 1.0


def test_split_is_seeded_stratified_and_recorded(credit):
    a = train(credit, "logreg", space=TINY["logreg"], seed=5, holdout_fraction=0.25)
    b = train(credit, "logreg", space=TINY["logreg"], seed=5, holdout_fraction=0.25)
    c = train(credit, "logreg", space=TINY["logreg"], seed=6, holdout_fraction=0.25)
    assert np.array_equal(a.holdout_index, b.holdout_index)
    assert not np.array_equal(a.holdout_index, c.holdout_index)
    assert len(a.holdout_index) == 625 and (a.split_seed, a.holdout_fraction) == (5, 0.25)
    assert not set(a.holdout_index) & set(a.train_index)
    overall = np.mean(credit.target() == "1")
    assert abs(np.mean(a.y_holdout == "1") - overall) < 0.01


def test_grid_and_random_search_record_space_and_best_params(credit):
    grid = train(credit, "hgb", space={"max_leaf_nodes": [7, 15]}, cv_folds=2)
    recorded = json.loads(grid.search_space)
    assert recorded["search"] == "grid" and recorded["space"] == {"max_leaf_nodes": [7, 15]}
    assert json.loads(grid.params["max_leaf_nodes"]) in (7, 15)
    assert json.loads(grid.params["random_state"]) == 0
    space = {"learning_rate": ("loguniform", 0.05, 0.3)}
    rnd = train(credit, "hgb", search="random", trials=2, cv_folds=2, space=space)
    rec = json.loads(rnd.search_space)
    assert rec["search"] == "random" and rec["trials"] == 2
    assert 0.05 <= json.loads(rnd.params["learning_rate"]) <= 0.3


def test_regression_metrics():
    rng = np.random.default_rng(0)
    pairs = zip(rng.normal(size=400), rng.integers(0, 3, 400), strict=True)
    records = [{"a": float(a), "k": str(k)} for a, k in pairs]
    labels = [2 * r["a"] + (1.5 if r["k"] == "1" else 0.0) + 0.5 for r in records]
    ds = from_records(records, labels, label_name="y", kind="stream", uri="t")
    assert ds.task == "regression"
    result = train(ds, "logreg", space={"alpha": [0.1]})
    assert result.metrics["r2"] > 0.99 and result.metrics["rmse"] < 0.1
    assert result.metrics["mae"] <= result.metrics["rmse"] and result.classes == []


def test_bad_arguments_are_config_errors(credit):
    with pytest.raises(ConfigError, match="estimator"):
        train(credit, "svm")
    with pytest.raises(ConfigError, match="search"):
        train(credit, "hgb", search="bayes")
    with pytest.raises(ConfigError, match="holdout"):
        train(credit, "hgb", holdout_fraction=1.5)
