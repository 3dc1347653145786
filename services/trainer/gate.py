"""The validation gate: a retrained model must not be worse than the champion on the same data.

Both models are judged on the candidate's fresh holdout: the candidate's holdout metrics come
from training, the champion's ONNX (signature verified by the caller) is run by onnxruntime on
the very same rows. Scores where higher is better (AUC, F1, accuracy, ...) may drop by at most
``margin`` (absolute); errors (RMSE, MAE, log loss) may grow by at most ``margin`` relative.

>>> judge({"roc_auc": 0.80}, {"roc_auc": 0.90}, "roc_auc", 0.02).passed
False
>>> judge({"rmse": 1.01}, {"rmse": 1.0}, "rmse", 0.02).passed
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx

from services.common.onnx_inputs import onnx_inputs
from services.trainer.onnx_export import cpu_session
from services.trainer.training import TrainResult, holdout_metrics

LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})


@dataclasses.dataclass(frozen=True)
class GateVerdict:
    """Whether the candidate may be published, with the numbers that decided it."""

    passed: bool
    metric: str
    candidate: float | None
    champion: float | None
    margin: float
    detail: str


def judge(
    candidate: Mapping[str, float], champion: Mapping[str, float], metric: str, margin: float
) -> GateVerdict:
    """Compare one metric of two models measured on the same holdout."""
    if metric not in candidate or metric not in champion:
        return GateVerdict(False, metric, None, None, margin, f"metric {metric!r} not measured")
    new, old = float(candidate[metric]), float(champion[metric])
    if metric in LOWER_IS_BETTER:
        passed = new <= old * (1 + margin) + 1e-12
        bound = f"at most {old * (1 + margin):.4f}"
    else:
        passed = new >= old - margin - 1e-12
        bound = f"at least {old - margin:.4f}"
    verb = "passes" if passed else "fails"
    detail = f"{metric} {new:.4f} vs champion {old:.4f}: {verb} (needs {bound})"
    return GateVerdict(passed, metric, new, old, margin, detail)


def _external_data(model_bytes: bytes) -> bool:
    model = onnx.load_from_string(model_bytes)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def champion_metrics(champion: Mapping[str, Any], result: TrainResult) -> dict[str, float]:
    """The champion's metrics on the candidate's holdout (ONNX run with onnxruntime)."""
    if champion["task"] != result.task:
        raise ValueError(f"champion task {champion['task']} != candidate task {result.task}")
    if _external_data(champion["onnx"]):
        raise ValueError("champion model declares external data; refusing to load it")
    names = [s.name for s in result.feature_specs]
    columns = {n: result.x_holdout[:, i] for i, n in enumerate(names)}
    specs = champion["signature_in"]["features"]
    missing = [s["name"] for s in specs if s["name"] not in columns]
    if missing:
        raise ValueError(f"the new data lacks champion features {missing}")
    outputs = cpu_session(champion["onnx"]).run(None, onnx_inputs(columns, specs))
    if result.task == "regression":
        predicted = np.asarray(outputs[0], dtype=float).ravel()
        return holdout_metrics("regression", [], result.y_holdout, predicted, None)
    classes = [str(c) for c in champion["classes"]]
    unknown = sorted(set(map(str, result.y_holdout)) - set(classes))
    if unknown:
        raise ValueError(f"holdout labels {unknown} are not champion classes {classes}")
    labels = np.asarray(outputs[0]).ravel().astype(str)
    proba = np.asarray(outputs[1], dtype=float)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 rows sum to 1 only within ~1e-7
    return holdout_metrics("classification", classes, result.y_holdout, labels, proba)


class ChampionGate:
    """Judges a trained candidate against a champion's content on the candidate's holdout."""

    def __init__(self, metric: str = "roc_auc", margin: float = 0.02) -> None:
        self.metric = metric
        self.margin = margin

    def __call__(self, candidate: TrainResult, champion: Mapping[str, Any] | None) -> GateVerdict:
        """Pass without a champion; otherwise compare, failing if the champion can't be run."""
        metric = "rmse" if candidate.task == "regression" else self.metric
        if champion is None:
            value = candidate.metrics.get(metric)
            return GateVerdict(True, metric, value, None, self.margin, "no champion to beat")
        try:
            baseline = champion_metrics(champion, candidate)
        except Exception as exc:  # onnx, onnxruntime and sklearn raise unrelated types
            value = candidate.metrics.get(metric)
            detail = f"champion not comparable on the new holdout: {exc}"
            return GateVerdict(False, metric, value, None, self.margin, detail)
        return judge(candidate.metrics, baseline, metric, self.margin)
