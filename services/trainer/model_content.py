"""The one place that knows the shape of ModelContent, the signed body of ModelPublished.

``build_model_content`` assembles the plain dict the serde encodes and the signature covers;
``model_id`` is the sha256 hex of the ONNX bytes, so the same model always has the same id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from services.trainer.dataset import DataVersion, FeatureSpec

CONTENT_FIELDS = (
    "model_id",
    "name",
    "version",
    "parent_id",
    "created_at",
    "task",
    "estimator",
    "onnx",
    "signature_in",
    "classes",
    "lineage",
    "baseline",
)
TASKS = ("classification", "regression")


def model_id(onnx: bytes) -> str:
    """The model's identity: sha256 hex of its ONNX bytes."""
    return hashlib.sha256(onnx).hexdigest()


def build_model_content(
    *,
    name: str,
    version: int,
    parent_id: str | None,
    task: str,
    estimator: str,
    onnx: bytes,
    feature_specs: Sequence[FeatureSpec],
    classes: Sequence[str],
    dataset: DataVersion,
    params: Mapping[str, str],
    search_space: str,
    cv_folds: int,
    split_seed: int,
    holdout_fraction: float,
    metrics: Mapping[str, float],
    parity: Mapping[str, float | int],
    code_version: str,
    baseline: Mapping[str, Any],
    created_at: int | None = None,
) -> dict[str, Any]:
    """A ModelContent dict; ``created_at`` is epoch milliseconds (now when omitted)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    if not onnx:
        raise ValueError("onnx bytes are empty")
    return {
        "model_id": model_id(onnx),
        "name": name,
        "version": int(version),
        "parent_id": parent_id,
        "created_at": int(time.time() * 1000) if created_at is None else int(created_at),
        "task": task,
        "estimator": estimator,
        "onnx": bytes(onnx),
        "signature_in": {"features": [s.as_dict() for s in feature_specs]},
        "classes": [str(c) for c in classes],
        "lineage": {
            "dataset": dataset.as_dict(),
            "params": {str(k): str(v) for k, v in params.items()},
            "search_space": search_space,
            "cv_folds": int(cv_folds),
            "split_seed": int(split_seed),
            "holdout_fraction": float(holdout_fraction),
            "metrics": {str(k): float(v) for k, v in metrics.items()},
            "parity": {
                "rows": int(parity["rows"]),
                "label_agreement": float(parity["label_agreement"]),
                "max_prob_diff": float(parity["max_prob_diff"]),
            },
            "code_version": code_version,
        },
        "baseline": {
            "features": [dict(f) for f in baseline["features"]],
            "prediction": dict(baseline["prediction"]),
            "importances": {str(k): float(v) for k, v in baseline["importances"].items()},
        },
    }
