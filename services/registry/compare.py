"""Compare two versions of a model: what changed in how it was made, and what it did to metrics.

>>> a = {"version": 1, "estimator": "hgb", "lineage": {"params": {"lr": "0.1"},
...      "metrics": {"f1": 0.8}, "dataset": {"content_hash": "x"}}}
>>> b = {"version": 2, "estimator": "hgb", "lineage": {"params": {"lr": "0.2"},
...      "metrics": {"f1": 0.85}, "dataset": {"content_hash": "x"}}}
>>> compare(a, b)["params"]["changed"]
{'lr': {'a': 0.1, 'b': 0.2}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse", "brier"})


def _decoded(params: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in params.items():
        try:
            out[key] = json.loads(raw)
        except (TypeError, ValueError):
            out[key] = raw  # not JSON: compare the text as it is
    return out


def param_diff(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, Any]:
    """Parameters added, removed, changed and unchanged from a to b (values JSON-decoded)."""
    da, db = _decoded(a), _decoded(b)
    return {
        "added": {k: db[k] for k in sorted(set(db) - set(da))},
        "removed": {k: da[k] for k in sorted(set(da) - set(db))},
        "changed": {
            k: {"a": da[k], "b": db[k]} for k in sorted(set(da) & set(db)) if da[k] != db[k]
        },
        "unchanged": sorted(k for k in set(da) & set(db) if da[k] == db[k]),
    }


def metric_deltas(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, Any]:
    """Per metric present in both: a, b, b - a, and whether b is better."""
    out: dict[str, Any] = {}
    for name in sorted(set(a) & set(b)):
        delta = b[name] - a[name]
        better = delta < 0 if name in LOWER_IS_BETTER else delta > 0
        out[name] = {"a": a[name], "b": b[name], "delta": delta, "b_better": better and delta != 0}
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter diff, metric deltas and changes of estimator and data between two models."""
    la, lb = a["lineage"], b["lineage"]
    return {
        "a": a["version"],
        "b": b["version"],
        "estimator": {"a": a["estimator"], "b": b["estimator"]},
        "params": param_diff(la["params"], lb["params"]),
        "metrics": metric_deltas(la["metrics"], lb["metrics"]),
        "same_data": la["dataset"]["content_hash"] == lb["dataset"]["content_hash"],
    }
