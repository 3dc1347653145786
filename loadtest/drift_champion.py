"""The drift benchmark's champion: a model trained on builtin:credit, its records and policy.

``train_champion`` trains the same gradient-boosted pipeline the trainer publishes (on
``builtin:credit``, function 0) and keeps its scikit-learn pipeline to predict scenario rows
(ONNX parity with it is checked by the trainer). ``bench_thresholds`` is the threshold policy
the benchmark judges detection with: a new Deployment gets no thresholds from the registry, so
the benchmark uses every drift statistic's own suggested levels (``Statistic.suggested``) on
every feature it applies to, and PSI's levels for the prediction and importance-weighted
drift; no level is chosen here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.onnx_inputs import MISSING_CATEGORY
from services.drift.statistics import KS, PSI, ChiSquare, JensenShannon, Statistic
from services.trainer.dataset import load_dataset
from services.trainer.model_build import TrainOptions, build_model
from tests.model_factory import deployment

DEPLOYMENT = "credit"
# Threshold metric names (as in Deployment.thresholds) and the statistic whose suggested levels
# they use; "feature: null" thresholds cover every feature the statistic applies to.
PER_FEATURE: dict[str, type[Statistic]] = {
    "psi": PSI,
    "js": JensenShannon,
    "ks_p": KS,
    "chi2_p": ChiSquare,
}
DEPLOYMENT_WIDE: dict[str, type[Statistic]] = {"prediction_psi": PSI, "weighted_drift": PSI}


@dataclass(frozen=True)
class Champion:
    """A trained model's ModelContent and the scikit-learn pipeline that predicts with it."""

    content: dict[str, Any]
    pipeline: Any

    @property
    def positive(self) -> str:
        """The positive class (the second, as in scikit-learn)."""
        return str(self.content["classes"][1])

    def predict(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probability of the positive class for rows given as columns by feature name."""
        specs = self.content["signature_in"]["features"]
        matrix = np.column_stack(
            [
                np.asarray(columns[s["name"]], dtype=object)
                if s["kind"] == "categorical"
                else np.asarray(columns[s["name"]], dtype=float).astype(object)
                for s in specs
            ]
        )
        matrix[matrix == None] = MISSING_CATEGORY  # noqa: E711 (elementwise on an object array)
        return self.pipeline.predict_proba(matrix)[:, 1]


def train_champion(rows: int = 20_000, seed: int = 42) -> Champion:
    """Train the champion on ``builtin:credit`` (function 0) as the trainer would."""
    ds = load_dataset(f"builtin:credit?rows={rows}&seed={seed}")
    built = build_model(
        ds, name=DEPLOYMENT, version=1, parent_id=None, options=TrainOptions("hgb", trials=1)
    )
    return Champion(built.content, built.result.pipeline)


def bench_thresholds() -> list[dict[str, Any]]:
    """Deployment thresholds at each statistic's suggested levels (no hysteresis band)."""

    def entry(metric: str, stat: type[Statistic]) -> dict[str, Any]:
        s = stat.suggested
        return {
            "metric": metric,
            "feature": None,
            "warning": s.warning,
            "critical": s.critical,
            "hysteresis": 0.0,
            "direction": s.direction,
        }

    items = PER_FEATURE | DEPLOYMENT_WIDE
    return [entry(metric, stat) for metric, stat in items.items()]


def deployment_record(content: dict[str, Any], window_seconds: int = 60) -> dict[str, Any]:
    """The Deployment serving ``content`` as champion, with the benchmark's thresholds."""
    return {
        **deployment(content, name=DEPLOYMENT),
        "updated_by": "bench",
        "reason": "drift benchmark",
        "thresholds": bench_thresholds(),
        "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
        "window_seconds": window_seconds,
    }
