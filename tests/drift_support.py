"""Builders for drift tests: hand-made baselines, model and deployment records, stream records."""

from __future__ import annotations

from typing import Any

import numpy as np

from services.common import serde
from services.drift.reference import ModelInfo, Reference, reference_for
from tests.signing_support import session_keys

T0 = 1_700_000_000_000
PSI_THRESHOLD = {
    "metric": "psi",
    "feature": None,
    "warning": 0.1,
    "critical": 0.25,
    "hysteresis": 0.05,
    "direction": "above",
}


def numeric_baseline(name: str, loc: float = 0.0, scale: float = 1.0, seed: int = 0) -> dict:
    """A numeric feature baseline with 10 quantile bins from a normal sample."""
    sample = np.random.default_rng(seed).normal(loc, scale, 20_000)
    edges = np.quantile(sample, np.linspace(0, 1, 11))
    counts = np.bincount(np.searchsorted(edges[1:-1], sample, side="right"), minlength=10)
    return {
        "name": name,
        "kind": "numeric",
        "count": int(sample.size),
        "missing_rate": 0.0,
        "min": float(edges[0]),
        "max": float(edges[-1]),
        "mean": float(sample.mean()),
        "std": float(sample.std()),
        "bin_edges": edges.tolist(),
        "bin_counts": counts.tolist(),
        "categories": {},
    }


def categorical_baseline(name: str, counts: dict[str, int]) -> dict:
    """A categorical feature baseline from category counts."""
    return {
        "name": name,
        "kind": "categorical",
        "count": sum(counts.values()),
        "missing_rate": 0.0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "bin_edges": [],
        "bin_counts": [],
        "categories": dict(counts),
    }


def content(model_id: str, version: int, features: list[dict], name: str = "credit") -> dict:
    """A ModelContent of a binary classifier with the given feature baselines."""
    edges = [i / 10 for i in range(11)]
    return {
        "model_id": model_id,
        "name": name,
        "version": version,
        "parent_id": None,
        "created_at": T0,
        "task": "classification",
        "estimator": "hand",
        "onnx": b"not used by drift",
        "signature_in": {
            "features": [{"name": f["name"], "kind": f["kind"], "categories": []} for f in features]
        },
        "classes": ["0", "1"],
        "lineage": {
            "dataset": {
                "kind": "builtin",
                "uri": "builtin:test",
                "content_hash": "cd" * 32,
                "rows": 1,
                "columns": [],
                "stream_slices": [],
            },
            "params": {},
            "search_space": "{}",
            "cv_folds": 2,
            "split_seed": 0,
            "holdout_fraction": 0.2,
            "metrics": {},
            "parity": {"rows": 1, "label_agreement": 1.0, "max_prob_diff": 0.0},
            "code_version": "test",
        },
        "baseline": {
            "features": features,
            "prediction": {
                "bin_edges": edges,
                "bin_counts": [100] * 10,
                "class_counts": {"0": 500, "1": 500},
            },
            "importances": {f["name"]: 1.0 / len(features) for f in features},
        },
    }


def model_record(c: dict) -> dict:
    """A ModelPublished record around a content, signed with the session's model key (a drift
    process started by `tests.drift_service.start_drift` trusts it)."""
    key = session_keys().model
    signature = key.sign(serde.canonical_bytes("ModelContent", c))
    return {"content": c, "key_id": key.key_id, "signature": signature}


def deployment(
    name: str,
    champion: dict,
    thresholds: list[dict] | None = None,
    revision: int = 1,
    challengers: list[dict] = (),
    window_seconds: int = 60,
) -> dict:
    """A Deployment record with the champion (a content) and thresholds."""

    def ref(c: dict) -> dict:
        return {"model_name": c["name"], "model_id": c["model_id"], "version": c["version"]}

    return {
        "name": name,
        "revision": revision,
        "updated_at": T0,
        "updated_by": "test",
        "reason": "test",
        "champion": ref(champion),
        "challengers": [{"model": ref(c), "weight": 0.0} for c in challengers],
        "mode": "shadow",
        "humility": [],
        "thresholds": list(thresholds if thresholds is not None else [PSI_THRESHOLD]),
        "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
        "window_seconds": window_seconds,
    }


def event(deployment_name: str, i: int, t: int, features: dict[str, Any]) -> dict:
    """A FeatureEvent."""
    return {
        "association_id": f"a{i}",
        "deployment": deployment_name,
        "event_time": t,
        "features": features,
        "attributes": {},
    }


def prediction(
    deployment_name: str, i: int, c: dict, p1: float, t: int, served: bool = True
) -> dict:
    """A Prediction row of model content ``c`` with positive-class probability ``p1``."""
    return {
        "association_id": f"a{i}",
        "deployment": deployment_name,
        "model_name": c["name"],
        "model_version": c["version"],
        "model_id": c["model_id"],
        "role": "champion" if served else "challenger",
        "served": served,
        "prediction": "1" if p1 >= 0.5 else "0",
        "probabilities": {"0": 1 - p1, "1": p1},
        "humility": [],
        "overridden": False,
        "event_time": t,
        "scored_time": t + 1,
        "input_partition": 0,
        "input_offset": i,
    }


def actual(deployment_name: str, i: int, label: str, t: int) -> dict:
    """An Actual."""
    return {
        "association_id": f"a{i}",
        "deployment": deployment_name,
        "label": label,
        "actual_time": t,
    }


def champion_reference(champ: dict, **deployment_options: Any) -> Reference:
    """What a drift monitor of deployment "d" takes as its reference with ``champ`` (a
    content, a binary classifier) as the champion; options go to ``deployment``."""
    info = ModelInfo(
        champ["model_id"],
        champ["name"],
        champ["version"],
        "classification",
        ("0", "1"),
        champ["baseline"],
    )
    return reference_for(deployment("d", champ, **deployment_options), info, 60)
