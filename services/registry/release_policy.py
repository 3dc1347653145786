"""A deployment's release policy: what the release controller does with a newer version of the
champion's model, when the evidence is enough, and how it guards a swap.

`normalize` checks a policy given in a request (or a deployment file) and completes it with the
defaults, so the Deployment record carries every field; null turns the automation off.

>>> normalize({"approval": "auto"})["min_windows"]
3
>>> try:
...     normalize({"margin": 2})
... except InvalidField as exc:
...     print(exc)
release.margin: 2 is outside 0.0..1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.monitored_metrics import METRICS
from services.registry.config_fields import InvalidField, choice, integer, keys, number

ACTIONS = ("shadow", "replace")
APPROVALS = ("auto", "owner")
DEFAULTS: dict[str, Any] = {
    "action": "shadow",
    "approval": "owner",
    "min_windows": 3,
    "min_labels": 500,
    "margin": 0.01,
    "significance": 0.05,
    "max_windows": 20,
    "rollback_windows": 3,
    "rollback_margin": 0.02,
    "retrain_every_seconds": None,
    "retrain_after_labels": None,
    "retrain_on": [],
}
# What `retrain_on` may name besides a metric: the kinds of ThresholdBreach drift writes.
BREACH_KINDS = ("data_drift", "prediction_drift", "accuracy", "data_quality")
MAX_WINDOWS = 100  # the registry keeps a deployment's last 100 drift reports (view.DRIFT_KEPT)


def normalize(value: Any, where: str = "release") -> dict[str, Any] | None:
    """The policy with every field, checked; None stays None (no automation)."""
    if value is None:
        return None
    p: Mapping[str, Any] = keys(value, where, tuple(DEFAULTS))
    out = {**DEFAULTS, "retrain_on": []}
    if "action" in p:
        out["action"] = choice(p["action"], f"{where}.action", ACTIONS)
    if "approval" in p:
        out["approval"] = choice(p["approval"], f"{where}.approval", APPROVALS)
    for key, low, high in (
        ("min_windows", 1, MAX_WINDOWS),
        ("min_labels", 1, 10_000_000),
        ("max_windows", 1, MAX_WINDOWS),
        ("rollback_windows", 0, MAX_WINDOWS // 2),
    ):
        if key in p:
            out[key] = integer(p[key], f"{where}.{key}", low, high)
    for key, low, high in (
        ("margin", 0.0, 1.0),
        ("significance", 1e-6, 0.5),
        ("rollback_margin", 0.0, 1.0),
    ):
        if key in p:
            out[key] = number(p[key], f"{where}.{key}", low=low, high=high)
    for key, low, high in (
        ("retrain_every_seconds", 60, 366 * 86_400),
        ("retrain_after_labels", 1, 1_000_000_000),
    ):
        if p.get(key) is not None:
            out[key] = integer(p[key], f"{where}.{key}", low, high)
    if "retrain_on" in p:
        out["retrain_on"] = _retrain_on(p["retrain_on"], f"{where}.retrain_on")
    if out["max_windows"] < out["min_windows"]:
        raise InvalidField(
            f"{where}.max_windows",
            f"{out['max_windows']} is below min_windows {out['min_windows']}: a challenger "
            "would be retired before it could be judged",
        )
    return out


def _retrain_on(value: Any, where: str) -> list[str]:
    """Breach kinds or metric names, each once."""
    if not isinstance(value, list) or len(value) > 50:
        raise InvalidField(where, "must be a list of breach kinds or metrics")
    known = (*BREACH_KINDS, *METRICS)
    for i, entry in enumerate(value):
        choice(entry, f"{where}[{i}]", known)
    return list(dict.fromkeys(value))
