"""Convert a fitted pipeline to ONNX (never pickle) and check it agrees with scikit-learn.

The model gets one input per feature named exactly as the column (whatever its spelling),
shape ``[None, 1]``, float for numbers and string for categories, in feature-spec order: the
pipeline's ColumnTransformer selects columns by integer index and skl2onnx maps index i to the
i-th input. Classifiers output ``label`` and a plain
``probabilities`` array (no ZipMap), in the order of the pipeline's ``classes_``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
from skl2onnx import convert_sklearn, get_latest_tested_opset_version
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from services.common.errors import StreamopsError
from services.common.onnx_inputs import onnx_inputs
from services.trainer.dataset import FeatureSpec
from services.trainer.onnx_graph import restore_input_names

MIN_LABEL_AGREEMENT = 0.999
MAX_PROB_DIFF = 1e-4


class ExportError(StreamopsError):
    """The pipeline could not be converted to ONNX, or the conversion disagrees with it."""


@dataclasses.dataclass(frozen=True)
class Parity:
    """How ONNX and scikit-learn compare on the holdout.

    For regression, ``label_agreement`` is the fraction of predictions within 1e-4 (relative to
    max(1, |y|)) and ``max_prob_diff`` is the largest absolute prediction difference.
    """

    rows: int
    label_agreement: float
    max_prob_diff: float

    def ok(
        self, min_agreement: float = MIN_LABEL_AGREEMENT, max_diff: float = MAX_PROB_DIFF
    ) -> bool:
        """True when labels agree often enough and probabilities are close enough."""
        return self.label_agreement >= min_agreement and self.max_prob_diff <= max_diff

    def as_dict(self) -> dict[str, float | int]:
        """The ``lineage.parity`` entry of a ModelContent."""
        return dataclasses.asdict(self)


def cpu_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """An onnxruntime session on one CPU thread (the trainer runs beside the scorers)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def value_parity(got: np.ndarray, expected: np.ndarray) -> Parity:
    """Regression parity: the share of values within 1e-4 (relative to max(1, |y|)) and the
    largest absolute difference."""
    got = np.asarray(got, dtype=float).ravel()
    expected = np.asarray(expected, dtype=float).ravel()
    diff = np.abs(got - expected)
    close = diff <= 1e-4 * np.maximum(1.0, np.abs(expected))
    return Parity(len(got), float(np.mean(close)), float(diff.max()))


def to_onnx(pipeline: Pipeline, feature_specs: Sequence[FeatureSpec]) -> bytes:
    """Serialized ONNX of the pipeline, one named ``[None, 1]`` input per feature."""
    initial_types = [
        (s.name, FloatTensorType([None, 1]) if s.kind == "numeric" else StringTensorType([None, 1]))
        for s in feature_specs
    ]
    estimator = pipeline.steps[-1][1]
    options = {id(estimator): {"zipmap": False}} if is_classifier(estimator) else None
    try:
        model = convert_sklearn(
            pipeline,
            initial_types=initial_types,
            options=options,
            target_opset=get_latest_tested_opset_version(),
        )
    except Exception as exc:  # skl2onnx raises many unrelated types; callers need one
        raise ExportError(f"skl2onnx could not convert the pipeline: {exc}") from exc
    restore_input_names(model, [s.name for s in feature_specs])
    return model.SerializeToString()


def check_parity(
    pipeline: Pipeline,
    onnx_bytes: bytes,
    x_holdout: np.ndarray,
    feature_specs: Sequence[FeatureSpec],
) -> Parity:
    """Run onnxruntime on the holdout in one batch and compare with the pipeline."""
    outputs = cpu_session(onnx_bytes).run(None, onnx_inputs(x_holdout, feature_specs))
    rows = len(x_holdout)
    if rows == 0:
        return Parity(0, 1.0, 0.0)
    if is_classifier(pipeline):
        labels = np.asarray(outputs[0]).ravel().astype(str)
        expected = np.asarray(pipeline.predict(x_holdout)).astype(str)
        agreement = float(np.mean(labels == expected))
        diff = np.abs(np.asarray(outputs[1], dtype=float) - pipeline.predict_proba(x_holdout))
        return Parity(rows, agreement, float(diff.max()))
    return value_parity(outputs[0], pipeline.predict(x_holdout))
