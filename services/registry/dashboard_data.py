"""What the dashboard shows, computed from the view and the live figures (pure functions).

>>> health([], None)["colour"]
'grey'
>>> health([{"severity": "critical", "kind": "accuracy", "metric": "accuracy"}], {})["colour"]
'red'
>>> distribution({"kind": "numeric", "bin_edges": [0, 1, 2], "bin_counts": [3, 1]}, [0.5, 1.5, 9])
... # doctest: +NORMALIZE_WHITESPACE
{'kind': 'numeric', 'labels': ['< 0', '[0, 1)', '[1, 2]', '> 2'],
 'baseline': [0.0, 0.75, 0.25, 0.0], 'current': [0.0, 0.333333, 0.333333, 0.333333],
 'current_count': 3, 'missing': 0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

STALE_WINDOWS = 3  # no report for this many windows: the deployment's monitoring looks stuck


def describe(breach: Mapping[str, Any]) -> str:
    """A breach's figure in words: `data_drift psi (age)`, `accuracy`."""
    what = (
        breach["kind"]
        if breach["metric"] == breach["kind"]
        else f"{breach['kind']} {breach['metric']}"
    )
    return what + (f" ({breach['feature']})" if breach.get("feature") else "")


def health(
    firing: Sequence[Mapping[str, Any]],
    latest: Mapping[str, Any] | None,
    now_ms: int | None = None,
    window_s: int = 60,
) -> dict[str, Any]:
    """A colour and its reasons: red (critical firing), amber (warning firing, stale or change
    point), green (monitored and quiet), grey (nothing measured yet)."""
    reasons = [f"{b['severity']}: {describe(b)}" for b in firing]
    if any(b["severity"] == "critical" for b in firing):
        return {"colour": "red", "reasons": reasons}
    if firing:
        return {"colour": "amber", "reasons": reasons}
    if latest is None:
        return {"colour": "grey", "reasons": ["no drift report yet"]}
    if latest.get("change_point"):
        return {"colour": "amber", "reasons": ["change point in the error stream"]}
    end = latest.get("window_end")
    if now_ms is not None and end is not None and now_ms - end > STALE_WINDOWS * window_s * 1000:
        return {"colour": "amber", "reasons": [f"last report {(now_ms - end) // 1000} s old"]}
    return {"colour": "green", "reasons": []}


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def window_series(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per drift window: volumes, drift, quality, accuracy, labels and their coverage."""
    rows = []
    for r in reports:
        seconds = max((r["window_end"] - r["window_start"]) / 1000, 1e-3)
        offered = r["event_count"] + r["schema_violations"]
        rows.append(
            {
                "window_start": r["window_start"],
                "window_end": r["window_end"],
                "model_version": r["model_version"],
                "event_count": r["event_count"],
                "prediction_count": r["prediction_count"],
                "predictions_per_s": r["prediction_count"] / seconds,
                "deadletter_rate": _rate(r["schema_violations"], offered),
                "weighted_drift": r["weighted_drift"],
                "prediction_psi": r["prediction_psi"],
                "metrics": dict(r["metrics"]),
                "label_coverage": r["label_coverage"],
                # Reports written before these counts existed read as none.
                "labels_joined": r.get("labels_joined", 0),
                "unknown_labels": r.get("unknown_labels", 0),
                "late_events": r["late_events"],
                "change_point": r["change_point"],
                "missing_rate": max((f["missing_rate"] for f in r["features"]), default=0.0),
                "out_of_range_rate": max(
                    (f["out_of_range_rate"] for f in r["features"]), default=0.0
                ),
                "challengers": [
                    {"model_version": c["model_version"], "metrics": dict(c["metrics"])}
                    for c in r["challengers"]
                ],
            }
        )
    return rows


def drift_score(feature: Mapping[str, Any]) -> float | None:
    """The feature's drift figure: PSI when measured, else the Jensen-Shannon distance."""
    return feature["psi"] if feature.get("psi") is not None else feature.get("js")


def feature_drift(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The latest window's drift against importance, and each feature's drift over time."""
    latest = reports[-1]["features"] if reports else []
    over_time: dict[str, list[float | None]] = {f["name"]: [] for f in latest}
    for r in reports:
        by_name = {f["name"]: f for f in r["features"]}
        for name, values in over_time.items():
            found = by_name.get(name)
            values.append(drift_score(found) if found else None)
    return {
        "latest": [
            {
                "name": f["name"],
                "importance": f["importance"],
                "drift": drift_score(f),
                "psi": f["psi"],
                "js": f["js"],
                "missing_rate": f["missing_rate"],
                "out_of_range_rate": f["out_of_range_rate"],
                "unseen_rate": f["unseen_rate"],
            }
            for f in latest
        ],
        "windows": [r["window_start"] for r in reports],
        "over_time": over_time,
    }


def distribution(baseline: Mapping[str, Any], values: Sequence[Any]) -> dict[str, Any]:
    """A feature's baseline share per bin (or category) beside the share of recent values."""
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if baseline["kind"] == "numeric":
        edges = [float(e) for e in baseline["bin_edges"]]
        counts = [float(c) for c in baseline["bin_counts"]]
        numbers = np.asarray([v for v in present if isinstance(v, int | float)], dtype=float)
        inner = np.histogram(numbers, bins=edges)[0].tolist() if len(edges) > 1 else []
        lo, hi = (edges[0], edges[-1]) if edges else (0.0, 0.0)
        current = [int((numbers < lo).sum()), *inner, int((numbers > hi).sum())]
        base = [0.0, *counts, 0.0]
        labels = [f"< {lo:g}"]
        labels += [
            f"[{a:g}, {b:g}{']' if i == len(edges) - 2 else ')'}"
            for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False))
        ]
        labels.append(f"> {hi:g}")
    else:
        cats = dict(baseline["categories"])
        seen = [str(v) for v in present]
        labels = sorted(cats, key=lambda c: -cats[c])
        unseen = sorted({v for v in seen if v not in cats})
        base = [float(cats[c]) for c in labels] + [0.0] * len(unseen)
        labels += unseen
        current = [seen.count(c) for c in labels]
    total_b, total_c = sum(base) or 1.0, sum(current) or 1
    return {
        "kind": baseline["kind"],
        "labels": labels,
        "baseline": [round(b / total_b, 6) for b in base],
        "current": [round(c / total_c, 6) for c in current],
        "current_count": sum(current),
        "missing": missing,
    }


def lineage_rows(versions: Sequence[Mapping[str, Any]], champion_id: str | None) -> dict[str, Any]:
    """Model versions as nodes (with holdout metrics) and parent edges, champion marked."""
    ids = {v["model_id"] for v in versions}
    return {
        "nodes": [
            {
                "model_id": v["model_id"],
                "version": v["version"],
                "estimator": v["estimator"],
                "origin": v.get("origin", ""),
                "created_at": v["created_at"],
                "metrics": v.get("metrics", {}),
                "champion": v["model_id"] == champion_id,
            }
            for v in versions
        ],
        "edges": [
            {"parent": v["parent_id"], "child": v["model_id"]}
            for v in versions
            if v.get("parent_id") in ids
        ],
    }
