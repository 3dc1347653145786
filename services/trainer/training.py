"""Fit a scikit-learn pipeline with a seeded split, hyper-parameter search and holdout metrics.

The pipeline is always ``ColumnTransformer`` (numeric: median imputer + scaler; categorical:
constant imputer + one-hot encoder ignoring unknown categories) followed by one estimator, so
skl2onnx can convert it and the scorer can feed it one input per feature. Search spaces are small
on purpose: a default run on 20k rows takes seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from services.common.errors import ConfigError
from services.common.onnx_inputs import MISSING_CATEGORY
from services.trainer.dataset import Dataset, FeatureSpec

ESTIMATORS = ("logreg", "hgb", "rf")
SEARCHES = ("grid", "random")
MODEL_STEP = "model"

# Per estimator: the grid searched exhaustively, and the distributions sampled by random search
# as ("loguniform" | "randint", low, high). "logreg" means Ridge when the task is regression.
SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "logreg": {
        "grid": {"C": [0.1, 1.0, 10.0]},
        "random": {"C": ("loguniform", 1e-3, 1e2)},
    },
    "hgb": {
        "grid": {"learning_rate": [0.1, 0.3], "max_leaf_nodes": [15, 31]},
        "random": {
            "learning_rate": ("loguniform", 0.03, 0.5),
            "max_leaf_nodes": ("randint", 8, 64),
            "l2_regularization": ("loguniform", 1e-4, 1.0),
        },
    },
    "rf": {
        "grid": {"max_depth": [8, 12], "min_samples_leaf": [1, 5]},
        "random": {"max_depth": ("randint", 4, 16), "min_samples_leaf": ("randint", 1, 10)},
    },
}
TREE_ENSEMBLES = (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
RIDGE_SPACE = {"grid": {"alpha": [0.1, 1.0, 10.0]}, "random": {"alpha": ("loguniform", 1e-3, 1e2)}}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A fitted pipeline with everything lineage needs and the split it was judged on."""

    pipeline: Pipeline
    estimator: str
    task: str
    classes: list[str]
    feature_specs: tuple[FeatureSpec, ...]
    params: dict[str, str]  # the fitted estimator's hyper-parameters, each a JSON string
    search_space: str  # JSON: search kind, trials, scoring and the space searched
    metrics: dict[str, float]  # holdout metrics plus the best cross-validation score
    cv_folds: int
    split_seed: int
    holdout_fraction: float
    train_index: np.ndarray
    holdout_index: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    train_seconds: float


def _estimator(name: str, task: str, seed: int) -> Any:
    if task == "classification":
        return {
            "logreg": lambda: LogisticRegression(max_iter=2000),
            "hgb": lambda: HistGradientBoostingClassifier(random_state=seed),
            "rf": lambda: RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1),
        }[name]()
    return {
        "logreg": Ridge,
        "hgb": lambda: HistGradientBoostingRegressor(random_state=seed),
        "rf": lambda: RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=1),
    }[name]()


def estimator_params(name: str, task: str) -> set[str]:
    """The hyper-parameters a search space may name for this estimator and task."""
    return set(_estimator(name, task, 0).get_params(deep=False))


def build_pipeline(feature_specs: Sequence[FeatureSpec], estimator: Any) -> Pipeline:
    """The preprocessing + estimator pipeline over a matrix whose columns follow the specs."""
    numeric = [i for i, s in enumerate(feature_specs) if s.kind == "numeric"]
    categorical = [i for i, s in enumerate(feature_specs) if s.kind == "categorical"]
    parts = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        # Trees are scale-invariant, and a float32 scaler in ONNX moves rows lying on a split
        # threshold to the other branch (RandomForest disagreed by 2 trees in 50); linear models
        # need the scaler.
        if not isinstance(estimator, TREE_ENSEMBLES):
            steps.append(("scale", StandardScaler()))
        parts.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        # skl2onnx converts a string imputer only with a string marker; "" is the marker and the
        # fill value is the token onnx_inputs writes for a missing category.
        impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, missing_values="")
        encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(
            ("categorical", Pipeline([("impute", impute), ("encode", encode)]), categorical)
        )
    return Pipeline([("features", ColumnTransformer(parts)), (MODEL_STEP, estimator)])


def _distribution(spec: Any) -> Any:
    if isinstance(spec, list | tuple) and spec and spec[0] == "loguniform":
        return stats.loguniform(spec[1], spec[2])
    if isinstance(spec, list | tuple) and spec and spec[0] == "randint":
        return stats.randint(spec[1], spec[2] + 1)
    return list(spec)


def _scoring(task: str, classes: list[str]) -> str:
    if task == "regression":
        return "neg_root_mean_squared_error"
    return "roc_auc" if len(classes) == 2 else "neg_log_loss"


def holdout_metrics(
    task: str, classes: list[str], y_true: np.ndarray, y_pred: np.ndarray, proba: Any
) -> dict[str, float]:
    """Holdout metrics: classification P/R/F1/AUC/log loss/accuracy, regression RMSE/MAE/R2.

    Without probabilities (``proba`` None: a model known only by its predicted labels) a
    classifier gets accuracy, precision, recall and F1, and no AUC or log loss.
    """
    if task == "regression":
        return {
            "rmse": math.sqrt(skm.mean_squared_error(y_true, y_pred)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
    binary = len(classes) == 2
    average = {"pos_label": classes[-1]} if binary else {"average": "macro"}
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0, **average),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0, **average),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0, **average),
    }
    if proba is None:
        return {k: float(v) for k, v in out.items()}
    out["log_loss"] = skm.log_loss(y_true, proba, labels=classes)
    if binary:
        out["roc_auc"] = skm.roc_auc_score(y_true == classes[-1], proba[:, 1])
    else:
        out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
    return {k: float(v) for k, v in out.items()}


def _json_param(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return json.dumps(repr(value))


def train(
    ds: Dataset,
    estimator: str = "hgb",
    search: str = "grid",
    trials: int = 4,
    seed: int = 0,
    holdout_fraction: float = 0.2,
    cv_folds: int = 3,
    space: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Split (seeded, stratified), search hyper-parameters with CV, refit and score the holdout.

    ``space`` overrides the estimator's default space for the chosen search (parameter -> list,
    or -> ("loguniform" | "randint", low, high) for random search).
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r}; choose one of {', '.join(SEARCHES)}")
    if not 0 < holdout_fraction < 1 or cv_folds < 2 or trials < 1:
        raise ConfigError("need 0 < holdout_fraction < 1, cv_folds >= 2 and trials >= 1")
    task, classes = ds.task, ds.classes
    started = time.perf_counter()
    x, y = ds.matrix(), ds.target()
    train_idx, hold_idx = train_test_split(
        np.arange(ds.rows),
        test_size=holdout_fraction,
        random_state=seed,
        stratify=y if task == "classification" else None,
    )
    defaults = RIDGE_SPACE if (estimator, task) == ("logreg", "regression") else None
    chosen = dict(space) if space is not None else (defaults or SEARCH_SPACES[estimator])[search]
    grid = {f"{MODEL_STEP}__{k}": _distribution(v) for k, v in chosen.items()}
    pipeline = build_pipeline(ds.feature_specs, _estimator(estimator, task, seed))
    folds = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=cv_folds, shuffle=True, random_state=seed
    )
    scoring = _scoring(task, classes)
    if search == "grid":
        searcher: Any = GridSearchCV(pipeline, grid, scoring=scoring, cv=folds, n_jobs=1)
    else:
        searcher = RandomizedSearchCV(
            pipeline, grid, n_iter=trials, scoring=scoring, cv=folds, random_state=seed, n_jobs=1
        )
    searcher.fit(x[train_idx], y[train_idx])
    best: Pipeline = searcher.best_estimator_
    x_hold, y_hold = x[hold_idx], y[hold_idx]
    proba = best.predict_proba(x_hold) if task == "classification" else None
    metrics = holdout_metrics(task, classes, y_hold, best.predict(x_hold), proba)
    metrics["cv_" + scoring.removeprefix("neg_")] = float(abs(searcher.best_score_))
    model_params = best.named_steps[MODEL_STEP].get_params(deep=False)
    search_space = {
        "search": search,
        "trials": trials if search == "random" else None,
        "scoring": scoring,
        "space": chosen,
    }
    return TrainResult(
        pipeline=best,
        estimator=estimator,
        task=task,
        classes=[str(c) for c in getattr(best, "classes_", [])] if task == "classification" else [],
        feature_specs=ds.feature_specs,
        params={k: _json_param(v) for k, v in sorted(model_params.items())},
        search_space=json.dumps(search_space, sort_keys=True),
        metrics=metrics,
        cv_folds=cv_folds,
        split_seed=seed,
        holdout_fraction=holdout_fraction,
        train_index=train_idx,
        holdout_index=hold_idx,
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_holdout=x_hold,
        y_holdout=y_hold,
        train_seconds=time.perf_counter() - started,
    )
