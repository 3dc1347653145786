"""The figures a threshold can watch: what drift reports, and which side of a level is bad.

One catalogue for the service that measures (drift) and the one that accepts configuration
(registry), so a threshold on a figure drift never reports is refused when it is requested
instead of being approved and then ignored.

>>> METRICS["ks_p"].direction, METRICS["ks_p"].kinds
('below', ('numeric',))
>>> METRICS["accuracy"].task
'classification'
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("above", "below")


@dataclass(frozen=True)
class Metric:
    """One watchable figure."""

    direction: str  # the side of a level that is bad, when a threshold does not say
    kinds: tuple[str, ...] = ()  # feature kinds it is measured for; () = deployment-wide
    task: str | None = None  # classification | regression when only one task reports it

    @property
    def per_feature(self) -> bool:
        """True when drift reports it per feature."""
        return bool(self.kinds)


_BOTH = ("numeric", "categorical")
METRICS: dict[str, Metric] = {
    "psi": Metric("above", _BOTH),
    "js": Metric("above", _BOTH),
    "ks_p": Metric("below", ("numeric",)),
    "chi2_p": Metric("below", ("categorical",)),
    "missing_rate": Metric("above", _BOTH),
    "out_of_range_rate": Metric("above", ("numeric",)),
    "unseen_rate": Metric("above", ("categorical",)),
    "weighted_drift": Metric("above"),
    "prediction_psi": Metric("above"),
    "accuracy": Metric("below", task="classification"),
    "precision": Metric("below", task="classification"),
    "recall": Metric("below", task="classification"),
    "f1": Metric("below", task="classification"),
    "auc": Metric("below", task="classification"),
    "rmse": Metric("above", task="regression"),
    "mae": Metric("above", task="regression"),
    "schema_violations": Metric("above"),
    "late_events": Metric("above"),
    "label_coverage": Metric("below"),
    # 1 in a window where a detector (DDM, ADWIN, Page-Hinkley) saw a change in the champion's
    # error stream, 0 in one with labels and no change: a threshold at 1 makes it a breach.
    "change_point": Metric("above"),
}
