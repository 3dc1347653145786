"""Humility rules: know when not to trust a prediction, and say so (or act).

Rules come from the Deployment record: `uncertain` (the top class probability falls inside
[low, high]), `outlier` (a number outside the baseline range widened by `margin` x range), and
`unseen_category` (a category the baseline never saw). Each rule's action is `flag` (mark the
prediction), `override` (mark it and replace the prediction with a configured value) or `route`
(mark it and copy the event to the review topic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass
class Verdict:
    """What the rules decided for one row."""

    flags: list[str] = dataclasses.field(default_factory=list)
    override: Any = None
    overridden: bool = False
    route: bool = False


def _baseline_by_name(baseline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in baseline.get("features", [])}


def _rule_features(rule: dict[str, Any], kind: str, base: dict[str, dict[str, Any]]) -> list[str]:
    if rule.get("feature"):
        return [rule["feature"]] if rule["feature"] in base else []
    return [name for name, f in base.items() if f["kind"] == kind]


def _hits(
    rule: dict[str, Any],
    columns: dict[str, np.ndarray],
    top_prob: np.ndarray | None,
    base: dict[str, dict[str, Any]],
    n: int,
) -> list[tuple[np.ndarray, str]]:
    kind = rule["kind"]
    if kind == "uncertain":
        if top_prob is None:
            return []
        mask = (top_prob >= rule.get("low", 0.0)) & (top_prob <= rule.get("high", 0.0))
        return [(mask, "uncertain")]
    out = []
    if kind == "outlier":
        for name in _rule_features(rule, "numeric", base):
            f = base[name]
            if f.get("min") is None or f.get("max") is None or name not in columns:
                continue
            pad = rule.get("margin", 0.0) * (f["max"] - f["min"])
            values = columns[name].astype(float)
            with np.errstate(invalid="ignore"):
                mask = (values < f["min"] - pad) | (values > f["max"] + pad)
            out.append((mask, f"outlier:{name}"))
    elif kind == "unseen_category":
        for name in _rule_features(rule, "categorical", base):
            if name not in columns:
                continue
            known = set(base[name].get("categories", {}))
            values = columns[name]
            mask = np.fromiter(
                ((v is not None and v != "" and v not in known) for v in values),
                dtype=bool,
                count=n,
            )
            out.append((mask, f"unseen:{name}"))
    else:
        raise ValueError(f"unknown humility rule kind {kind!r}")
    return out


def apply_rules(
    rules: Sequence[dict[str, Any]],
    columns: dict[str, np.ndarray],
    top_prob: np.ndarray | None,
    baseline: dict[str, Any],
    n: int,
) -> list[Verdict]:
    """Evaluate every rule over a batch of n rows; one Verdict per row."""
    verdicts = [Verdict() for _ in range(n)]
    base = _baseline_by_name(baseline)
    for rule in rules:
        action = rule.get("action", "flag")
        if action not in ("flag", "override", "route"):
            raise ValueError(f"unknown humility action {action!r}")
        for mask, flag in _hits(rule, columns, top_prob, base, n):
            for i in np.flatnonzero(mask):
                v = verdicts[i]
                v.flags.append(flag)
                if action == "override" and not v.overridden:
                    v.override, v.overridden = rule.get("override_value"), True
                elif action == "route":
                    v.route = True
    return verdicts
