"""What each deployment is compared against: the serving champion's baseline and the policy.

Fed with every verified record of `models` and `deployments` (replayed from the beginning, then
followed; `services/drift/control.py` checks signatures and revisions before a record gets here).
Only the monitoring parts of a model are kept (baseline, importances, task, classes); the ONNX
bytes are dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import ConfigError
from services.drift.hysteresis import Threshold
from services.drift.join import TAG
from services.drift.quality import FeatureQuality
from services.drift.statistics import prediction_features
from services.drift.statistics.binning import Binning

log = logging.getLogger(__name__)

# Per-feature figures a threshold with `feature: null` applies to, and the kinds they exist for.
PER_FEATURE = {
    "psi": ("numeric", "categorical"),
    "js": ("numeric", "categorical"),
    "ks_p": ("numeric",),
    "chi2_p": ("categorical",),
    "missing_rate": ("numeric", "categorical"),
    "out_of_range_rate": ("numeric",),
    "unseen_rate": ("categorical",),
}


@dataclass(frozen=True)
class ModelInfo:
    """The monitoring part of one model record."""

    model_id: str
    name: str
    version: int
    task: str
    classes: tuple[str, ...]
    baseline: Mapping[str, Any]


@dataclass(frozen=True)
class Reference:
    """One deployment's champion baseline, importances, thresholds and window size."""

    deployment: str
    revision: int
    model_id: str
    model_name: str
    model_version: int
    task: str
    classes: tuple[str, ...]
    features: tuple[Mapping[str, Any], ...]  # feature baselines usable for statistics
    predictions: tuple[Mapping[str, Any], ...]  # prediction baseline seen as features
    importances: Mapping[str, float]
    thresholds: tuple[Threshold, ...]
    window_seconds: int
    challengers: tuple[str, ...] = field(default=())

    @property
    def positive(self) -> str | None:
        """The positive class of a binary classifier (the second class, as in scikit-learn)."""
        return self.classes[1] if self.task == "classification" and len(self.classes) == 2 else None


def usable(feature: Mapping[str, Any]) -> bool:
    """True when statistics and quality can be built from this feature baseline."""
    try:
        Binning(feature)
        FeatureQuality(feature)
    except ConfigError as exc:
        log.warning("feature %s not monitored: %s", feature.get("name"), exc)
        return False
    return True


def expand_thresholds(
    policy: list[Mapping[str, Any]], features: tuple[Mapping[str, Any], ...]
) -> tuple[Threshold, ...]:
    """Thresholds by (metric, feature); a per-feature metric without a feature covers them all."""
    explicit = [Threshold.from_dict(t) for t in policy]
    taken = {t.key for t in explicit}
    out = [t for t in explicit if t.feature is not None or t.metric not in PER_FEATURE]
    for t in explicit:
        if t.feature is not None or t.metric not in PER_FEATURE:
            continue
        for f in features:
            key = (t.metric, str(f["name"]))
            if f.get("kind") in PER_FEATURE[t.metric] and key not in taken:
                out.append(
                    Threshold(t.metric, key[1], t.warning, t.critical, t.hysteresis, t.direction)
                )
    return tuple(out)


class ReferenceBook:
    """Models and deployments as last seen; thread-safe (a follower thread feeds it)."""

    def __init__(self, default_window_seconds: int = 60) -> None:
        self.default_window_seconds = default_window_seconds
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}
        self._ids: dict[str, str] = {}  # model id by its first TAG characters (join entries)
        self._deployments: dict[str, Mapping[str, Any]] = {}
        self._cache: dict[str, Reference | None] = {}

    def apply(self, record: Mapping[str, Any]) -> None:
        """Take in a ModelPublished or a Deployment record."""
        with self._lock:
            if "content" in record:
                c = record["content"]
                self._ids[c["model_id"][:TAG]] = c["model_id"]
                self._models[c["model_id"]] = ModelInfo(
                    c["model_id"],
                    c["name"],
                    int(c["version"]),
                    c["task"],
                    tuple(str(x) for x in c.get("classes") or ()),
                    c["baseline"],
                )
            elif "champion" in record:
                self._deployments[record["name"]] = record
            else:
                raise ConfigError("neither a ModelPublished nor a Deployment record")
            self._cache.clear()

    def model(self, model_id: str) -> ModelInfo | None:
        """A model by id, or None."""
        with self._lock:
            return self._models.get(model_id)

    def model_id(self, tag: str) -> str:
        """The full id of a model from its first ``TAG`` characters (as a join entry names
        it); the tag itself for a model not seen on the models topic."""
        with self._lock:
            return self._ids.get(tag, tag)

    def get(self, deployment: str) -> Reference | None:
        """The deployment's reference, or None until both it and its champion are known."""
        with self._lock:
            if deployment not in self._cache:
                self._cache[deployment] = self._build(deployment)
            return self._cache[deployment]

    def label_delay(self, deployment: str) -> int | None:
        """How long the deployment's predictions wait for actuals (None: not set, or unknown)."""
        with self._lock:
            d = self._deployments.get(deployment)
        return None if d is None else d.get("label_delay_seconds")

    def with_model(self, deployment: str, model_id: str) -> Reference | None:
        """The deployment's current policy with a given model as the reference (for restores)."""
        with self._lock:
            d, model = self._deployments.get(deployment), self._models.get(model_id)
        if d is None or model is None:
            return None
        return reference_for(d, model, self.default_window_seconds)

    def _build(self, deployment: str) -> Reference | None:
        d = self._deployments.get(deployment)
        if d is None:
            return None
        model = self._models.get(d["champion"]["model_id"])
        if model is None:
            return None
        return reference_for(d, model, self.default_window_seconds)


def reference_for(d: Mapping[str, Any], model: ModelInfo, default_window_s: int) -> Reference:
    """Combine a Deployment record and its champion's model info."""
    features = tuple(f for f in model.baseline.get("features", []) if usable(f))
    preds = tuple(
        f for f in prediction_features(model.baseline.get("prediction") or {}) if usable(f)
    )
    try:
        thresholds = expand_thresholds(list(d.get("thresholds") or []), features)
    except ConfigError as exc:
        log.warning("deployment %s: thresholds ignored: %s", d["name"], exc)
        thresholds = ()
    return Reference(
        deployment=d["name"],
        revision=int(d.get("revision", 0)),
        model_id=model.model_id,
        model_name=model.name,
        model_version=model.version,
        task=model.task,
        classes=model.classes,
        features=features,
        predictions=preds,
        importances=dict(model.baseline.get("importances") or {}),
        thresholds=thresholds,
        window_seconds=int(d.get("window_seconds") or default_window_s),
        challengers=tuple(c["model"]["model_id"] for c in d.get("challengers") or ()),
    )
