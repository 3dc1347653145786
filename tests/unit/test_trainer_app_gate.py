"""The validation gate: the champion's ONNX judged on the candidate's own holdout."""

from __future__ import annotations

import functools

import pytest

from services.trainer.dataset import load_dataset
from services.trainer.gate import ChampionGate, judge
from services.trainer.onnx_export import to_onnx
from services.trainer.training import train

pytestmark = pytest.mark.unit

DATA = "builtin:credit?rows=800&seed=5"


SPACES = {"hgb": {"max_leaf_nodes": [15]}, "logreg": {"C": [1.0]}}  # one fit each: fast


@functools.cache
def champion(estimator: str) -> dict:
    """The fields of a ModelContent the gate reads, from a real fitted pipeline."""
    result = train(load_dataset(DATA), estimator=estimator, cv_folds=2, space=SPACES[estimator])
    return {
        "task": result.task,
        "classes": result.classes,
        "onnx": to_onnx(result.pipeline, result.feature_specs),
        "signature_in": {"features": [s.as_dict() for s in result.feature_specs]},
    }


def candidate(estimator: str, seed: int = 1):
    ds = load_dataset("builtin:credit?rows=800&seed=9")  # fresh rows, same concept
    return train(ds, estimator=estimator, cv_folds=2, seed=seed, space=SPACES[estimator])


@pytest.mark.parametrize(
    ("new", "old", "metric", "passed"),
    [
        (0.89, 0.90, "roc_auc", True),
        (0.87, 0.90, "roc_auc", False),
        (0.95, 0.90, "f1", True),
        (1.01, 1.00, "rmse", True),
        (1.03, 1.00, "rmse", False),
        (0.30, 0.40, "log_loss", True),
    ],
)
def test_judge_direction_and_margin(new: float, old: float, metric: str, passed: bool) -> None:
    verdict = judge({metric: new}, {metric: old}, metric, 0.02)
    assert verdict.passed is passed
    assert (verdict.candidate, verdict.champion) == (new, old)


def test_a_much_worse_candidate_is_rejected_on_the_same_holdout() -> None:
    worse = candidate("logreg")  # Agrawal function 0 is non-monotone in age: logreg fails it
    verdict = ChampionGate("roc_auc", 0.02)(worse, champion("hgb"))
    assert not verdict.passed
    assert verdict.champion is not None and verdict.champion > 0.95
    assert verdict.candidate == worse.metrics["roc_auc"] < verdict.champion - 0.02
    assert "fails" in verdict.detail


def test_a_better_candidate_passes_and_the_champion_is_scored_not_copied() -> None:
    better = candidate("hgb")
    verdict = ChampionGate("roc_auc", 0.02)(better, champion("logreg"))
    assert verdict.passed
    assert verdict.champion is not None and verdict.champion < 0.8


def test_no_champion_passes_and_an_incomparable_one_fails() -> None:
    new = candidate("logreg")
    assert ChampionGate()(new, None).passed
    broken = {**champion("hgb"), "classes": ["yes", "no"]}
    verdict = ChampionGate()(new, broken)
    assert not verdict.passed and "not comparable" in verdict.detail
