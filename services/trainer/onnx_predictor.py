"""An ONNX model as a scikit-learn-like estimator over the trainer's object matrices.

An imported model's metrics, baseline and permutation importances are measured on the ONNX
graph the scorer will serve, not on the file it came from: whatever the source (a scikit-learn
pipeline, an XGBoost booster, an ONNX file), what is published is what was measured. It feeds
inputs exactly as the scorer does (``onnx_inputs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from services.common.onnx_inputs import onnx_inputs
from services.trainer.dataset import FeatureSpec
from services.trainer.onnx_export import cpu_session


class OnnxPredictor:
    """predict / predict_proba / score of a serialized ONNX model."""

    def __init__(
        self, onnx_bytes: bytes, specs: Sequence[FeatureSpec], task: str, classes: Sequence[str]
    ) -> None:
        self._session = cpu_session(onnx_bytes)
        self._specs = list(specs)
        self.task = task
        self.classes_ = np.array(list(classes), dtype=object)

    def fit(self, x: Any, y: Any) -> OnnxPredictor:
        """Never fitted here: the model was trained elsewhere (sklearn's checks want the name)."""
        raise NotImplementedError("an imported model is not refitted")

    def run(self, x: np.ndarray) -> list[Any]:
        """The raw outputs on a matrix whose columns follow the specs."""
        return self._session.run(None, onnx_inputs(x, self._specs))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels (as text) or values."""
        first = np.asarray(self.run(x)[0]).ravel()
        if self.task == "classification":
            return np.array([str(v) for v in first], dtype=object)
        return first.astype(float)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return np.asarray(self.run(x)[1], dtype=float)

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy, or R² for regression: what permutation importance measures drops of."""
        if self.task == "classification":
            return float(skm.accuracy_score(np.asarray(y).astype(str), self.predict(x)))
        return float(skm.r2_score(np.asarray(y, dtype=float), self.predict(x)))
