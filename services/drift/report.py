"""The records the drift service publishes: a DriftReport per closed window, ThresholdBreaches.

Reports and breaches are produced before the batch's Redis transaction commits, so after a
crash they can be produced again: they are at-least-once. A replay produces the same
breach_id (it is derived from deployment, metric, feature, window and transition), so
consumers (alerting) deduplicate by id; a report is identified by deployment and window.
"""

from __future__ import annotations

import hashlib
from typing import Any

from services.drift.aggregate import WindowFigures
from services.drift.hysteresis import Transition
from services.drift.paired import PairedOutcomes
from services.drift.reference import Reference

KINDS = {
    "psi": "data_drift",
    "js": "data_drift",
    "ks_p": "data_drift",
    "chi2_p": "data_drift",
    "weighted_drift": "data_drift",
    "prediction_psi": "prediction_drift",
    "missing_rate": "data_quality",
    "out_of_range_rate": "data_quality",
    "unseen_rate": "data_quality",
    "schema_violations": "data_quality",
    "late_events": "data_quality",
}


def breach_kind(metric: str) -> str:
    """The ThresholdBreach kind of a metric (accuracy figures by default)."""
    return KINDS.get(metric, "accuracy")


def drift_report(ref: Reference, f: WindowFigures) -> dict[str, Any]:
    """The DriftReport record of a closed window."""
    return {
        "deployment": ref.deployment,
        "model_id": ref.model_id,
        "model_version": ref.model_version,
        "window_start": f.start,
        "window_end": f.end,
        "event_count": f.event_count,
        "prediction_count": f.prediction_count,
        "features": [
            {
                "name": x.name,
                "psi": x.psi,
                "ks": x.ks,
                "js": x.js,
                "chi2_p": x.chi2_p,
                "importance": x.importance,
                "missing_rate": x.missing_rate,
                "out_of_range_rate": x.out_of_range_rate,
                "unseen_rate": x.unseen_rate,
                "observations": x.observations,
                "psi_bins": x.psi_bins,
                "psi_needs": x.psi_needs,
            }
            for x in f.features
        ],
        "weighted_drift": f.weighted_drift,
        "prediction_psi": f.prediction_psi,
        "metrics": dict(f.metrics),
        "label_coverage": f.label_coverage,
        "label_delay_ms_p50": f.label_delay_ms_p50,
        "schema_violations": f.schema_violations,
        "late_events": f.late_events,
        "change_point": f.change_point,
        "challengers": [
            {
                "model_id": c.model_id,
                "model_version": c.model_version,
                "metrics": c.metrics,
                "paired": None if c.paired is None else paired(c.paired),
            }
            for c in f.challengers
        ],
        "labels_joined": f.labels_joined,
        "unknown_labels": f.unknown_labels,
    }


def paired(o: PairedOutcomes) -> dict[str, Any]:
    """The PairedOutcomes record of a challenger's pairs with the champion."""
    return {
        "n": o.n,
        "champion_only": o.champion_only,
        "challenger_only": o.challenger_only,
        "diff_sum": o.diff_sum,
        "diff_sq_sum": o.diff_sq_sum,
    }


def breach_id(deployment: str, t: Transition, start: int, end: int) -> str:
    """Deterministic id of a transition in a window (a replay gives the same id)."""
    text = "|".join([deployment, t.metric, t.feature or "", str(start), str(end), t.kind])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def breach(ref: Reference, f: WindowFigures, t: Transition, observed_at: int) -> dict[str, Any]:
    """The ThresholdBreach record of one transition (escalations are firing at a new level)."""
    if t.kind == "resolved":
        status = "resolved"
        severity = "critical" if _is_critical(ref, t) else "warning"
    else:
        status, severity = "firing", t.severity or "warning"
    return {
        "breach_id": breach_id(ref.deployment, t, f.start, f.end),
        "deployment": ref.deployment,
        "kind": breach_kind(t.metric),
        "metric": t.metric,
        "feature": t.feature,
        "severity": severity,
        "status": status,
        "value": t.value,
        "threshold": t.threshold,
        "window_start": f.start,
        "window_end": f.end,
        "model_id": ref.model_id,
        "model_version": ref.model_version,
        "observed_at": observed_at,
        "labels": {"transition": t.kind},
    }


def _is_critical(ref: Reference, t: Transition) -> bool:
    for th in ref.thresholds:
        if th.key == (t.metric, t.feature):
            return th.warning is None and th.critical == t.threshold
    return False
