"""Load a model's ONNX bytes into a session (after the guard and the probe) and predict on a batch
of rows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from services.common.onnx_inputs import onnx_inputs
from services.scorer.model_guard import GuardLimits, inspect_model
from services.scorer.model_probe import ProbeLimits, probe_model
from services.scorer.sessions import new_session


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A servable model: its identity, signature, baseline and an onnxruntime session."""

    model_id: str
    name: str
    version: int
    task: str
    classes: tuple[str, ...]
    feature_specs: tuple[Mapping[str, Any], ...]
    baseline: Mapping[str, Any]
    session: ort.InferenceSession
    load_seconds: float


@dataclasses.dataclass(frozen=True)
class BatchPrediction:
    """Predictions for n rows: labels (str) or values (float), and class probabilities."""

    predictions: list[Any]
    probabilities: np.ndarray | None  # shape (n, len(classes)) for classifiers

    def top_probability(self) -> np.ndarray | None:
        """The highest class probability per row (for the `uncertain` humility rule)."""
        return None if self.probabilities is None else self.probabilities.max(axis=1)


def load_model(
    content: Mapping[str, Any],
    limits: GuardLimits | None = None,
    probe: ProbeLimits | None = None,
) -> LoadedModel:
    """Guard-check, probe and load a ModelContent (signature already verified by the caller)."""
    started = time.perf_counter()
    inspect_model(content["onnx"], limits)
    probe_model(content["onnx"], probe)  # runtime shapes, before this process allocates them
    session = new_session(content["onnx"])
    return LoadedModel(
        model_id=content["model_id"],
        name=content["name"],
        version=int(content["version"]),
        task=content["task"],
        classes=tuple(content.get("classes", ())),
        feature_specs=tuple(content["signature_in"]["features"]),
        baseline=content.get("baseline", {}),
        session=session,
        load_seconds=time.perf_counter() - started,
    )


def predict(model: LoadedModel, rows: Sequence[Mapping[str, Any]]) -> BatchPrediction:
    """One onnxruntime run over the batch; raises PoisonMessage if a row cannot be encoded."""
    inputs = onnx_inputs(rows, model.feature_specs)
    outputs = model.session.run(None, inputs)
    if model.task == "classification":
        labels = [str(v) for v in np.asarray(outputs[0]).ravel()]
        probabilities = np.asarray(outputs[1], dtype=np.float64) if len(outputs) > 1 else None
        return BatchPrediction(labels, probabilities)
    values = np.asarray(outputs[0], dtype=np.float64).ravel().tolist()
    return BatchPrediction(values, None)
