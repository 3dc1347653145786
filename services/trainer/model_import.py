"""From a model file and its reference data to an unsigned ModelContent, as training makes one.

The reference data (rows the model was not trained on, with labels) plays the holdout: the
metrics, the monitoring baseline and the permutation importances are measured on it, by running
the ONNX graph that will be served. Where the original model runs here (scikit-learn, XGBoost),
the conversion must agree with it as a trained model's must (``onnx_export`` bounds). The origin
is recorded in the lineage: ``params.origin`` is "imported from <file sha256>" and
``search_space`` says the format, file and trusted types.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from services.common.onnx_inputs import MISSING_CATEGORY
from services.trainer.baseline import compute_baseline, permutation_importances
from services.trainer.dataset import Dataset
from services.trainer.model_build import code_version
from services.trainer.model_content import build_model_content
from services.trainer.model_sources import ImportRefused, Source, file_sha256, read_source
from services.trainer.onnx_export import MAX_PROB_DIFF, MIN_LABEL_AGREEMENT, Parity, value_parity
from services.trainer.onnx_predictor import OnnxPredictor
from services.trainer.training import holdout_metrics
from services.trainer.validation import ValidationReport, validate_dataset


@dataclasses.dataclass(frozen=True)
class ImportedModel:
    """The content to sign plus what was measured, for the summary and tests."""

    content: dict[str, Any]
    report: ValidationReport
    source: Source
    parity: Parity
    sha256: str


def _parity(source: Source, served: OnnxPredictor, x: np.ndarray) -> Parity:
    """ONNX against the original model; without one, labels against the arg-max class."""
    rows = len(x)
    if source.task == "regression":
        got = served.predict(x)
        return value_parity(got, got if source.original is None else source.original(x)[0])
    labels, proba = served.predict(x), served.predict_proba(x)
    if source.original is None:
        argmax = np.array(source.classes, dtype=object)[proba.argmax(axis=1)]
        return Parity(rows, float(np.mean(labels == argmax)), 0.0)
    expected_labels, expected_proba = source.original(x)
    agreement = float(np.mean(labels == np.asarray(expected_labels).astype(str)))
    return Parity(rows, agreement, float(np.abs(proba - expected_proba).max()))


def _check_labels(source: Source, ds: Dataset) -> None:
    if source.task == "classification":  # a regressor's labels are numbers, whatever inferred
        seen = sorted({str(v) for v in ds.labels if v is not None})
        unknown = [c for c in seen if c not in source.classes]
        if unknown:
            raise ImportRefused(
                f"reference label {', '.join(map(repr, unknown))} is not a class of the model "
                f"(its classes: {', '.join(source.classes)}); the reference data must be "
                "labelled like the model's training data"
            )


def import_model(
    path: Path,
    ds: Dataset,
    *,
    name: str,
    version: int,
    parent_id: str | None,
    trust: Sequence[str] = (),
    seed: int = 0,
    max_gap: float = MAX_PROB_DIFF,
    created_at: int | None = None,
) -> ImportedModel:
    """Read, convert, check and measure a model file on reference data; unsigned content."""
    report = validate_dataset(ds)
    source = read_source(path, ds, trust)
    _check_labels(source, ds)
    served = OnnxPredictor(source.onnx, source.specs, source.task, source.classes)
    index = {s.name: i for i, s in enumerate(ds.feature_specs)}
    x = ds.matrix()[:, [index[s.name] for s in source.specs]]
    y = ds.labels.astype(str) if source.task == "classification" else ds.labels.astype(float)
    try:
        parity = _parity(source, served, x)
    except Exception as exc:  # onnxruntime or the original model failing on the rows
        raise ImportRefused(f"the model does not run on the reference data: {exc}") from None
    if not parity.ok(MIN_LABEL_AGREEMENT, max_gap):
        raise ImportRefused(
            f"the ONNX conversion disagrees with the original model: labels agree on "
            f"{parity.label_agreement:.4%}, largest gap {parity.max_prob_diff:.2e} (allowed "
            f"{max_gap:.0e}), {parity.rows} rows. Tree models converted with float32 thresholds "
            "can differ on rows that sit on a split; if the measured gap is acceptable to you, "
            "allow it with --max-gap (it is recorded in the version's lineage)"
        )
    predictions = served.predict(x)
    proba = served.predict_proba(x) if source.task == "classification" else None
    # float32 rows sum to 1 within 1e-7 and may hold 1.0000001; log loss refuses both.
    normal = None if proba is None else np.clip(proba / proba.sum(axis=1, keepdims=True), 0, 1)
    metrics = holdout_metrics(source.task, source.classes, y, predictions, normal)
    baseline = compute_baseline(
        x,
        source.specs,
        task=source.task,
        classes=source.classes,
        predictions=predictions,
        probabilities=proba,
        importances=permutation_importances(
            served, x, y, [s.name for s in source.specs], seed=seed
        ),
        missing_token=MISSING_CATEGORY,
    )
    sha = file_sha256(path)
    origin = {"origin": "imported", "format": source.fmt, "file": path.name, "sha256": sha,
              "trusted": sorted(trust)}  # fmt: skip
    content = build_model_content(
        name=name,
        version=version,
        parent_id=parent_id,
        task=source.task,
        estimator=source.description,
        onnx=source.onnx,
        feature_specs=source.specs,
        classes=source.classes,
        dataset=ds.version,
        params={"origin": json.dumps(f"imported from {sha}"), **source.params},
        search_space=json.dumps(origin, sort_keys=True),
        cv_folds=0,
        split_seed=seed,
        holdout_fraction=1.0,  # every reference row is held out: the model never saw them here
        metrics=metrics,
        parity=parity.as_dict(),
        code_version=code_version(),
        baseline=baseline,
        created_at=created_at,
    )
    return ImportedModel(content, report, source, parity, sha)
