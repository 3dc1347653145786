"""The one place that knows the shape of ModelContent, the signed body of ModelPublished.

``build_model_content`` assembles the plain dict the serde encodes and the signature covers;
``model_id`` is the sha256 hex of the ONNX bytes, so the same model always has the same id. A
*described* model (an external deployment's: it runs in the user's service) has no ONNX bytes and
estimator ``external``; its id is the sha256 hex of the content's canonical encoding with
``model_id`` empty, so it names this very description (name, version, data, baseline, time).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from services.common import serde
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
EXTERNAL = "external"  # the estimator of a described model: no ONNX, served by the user


def model_id(onnx: bytes) -> str:
    """The model's identity: sha256 hex of its ONNX bytes."""
    return hashlib.sha256(onnx).hexdigest()


def described_model_id(content: Mapping[str, Any]) -> str:
    """A described model's identity: sha256 hex of its canonical encoding, model_id empty."""
    body = serde.canonical_bytes("ModelContent", {**content, "model_id": ""})
    return hashlib.sha256(body).hexdigest()


def content_id(content: Mapping[str, Any]) -> str:
    """The id a ModelContent must carry: of its ONNX bytes, or of the description without any."""
    return model_id(content["onnx"]) if content["onnx"] else described_model_id(content)


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
    if not onnx and estimator != EXTERNAL:
        raise ValueError(f"onnx bytes are empty (only an {EXTERNAL!r} model has none)")
    if onnx and estimator == EXTERNAL:
        raise ValueError(f"an {EXTERNAL!r} model is described, not served: it has no ONNX")
    content = {
        "model_id": "",
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
    content["model_id"] = content_id(content)
    return content
