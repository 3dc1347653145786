"""Data quality of one feature's window: missing, out-of-range and unseen-category rates.

Missing values (None, NaN) count towards ``missing_rate`` over all values seen; the other two
rates are over present values. A numeric value is out of range outside
``[min - margin, max + margin]`` of the baseline (``margin`` in the feature's units, default 0);
a categorical value is unseen when the baseline has no such category.

>>> q = FeatureQuality({"name": "x", "kind": "numeric", "min": 0.0, "max": 1.0})
>>> q.update([0.5, None, 3.0, 0.0])
>>> q.get()
Quality(count=4, missing_rate=0.25, out_of_range_rate=0.3333333333333333, unseen_rate=0.0)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from services.common.errors import ConfigError
from services.drift.statistics.binning import Column, Values, category_tally


@dataclass(frozen=True)
class Quality:
    """Quality figures of a window; rates are None while no value (or no present value) came."""

    count: int
    missing_rate: float | None
    out_of_range_rate: float | None
    unseen_rate: float | None


class FeatureQuality:
    """Counts missing, out-of-range and unseen values of one feature over a window."""

    def __init__(self, baseline: Mapping[str, Any], margin: float = 0.0) -> None:
        self.name = str(baseline.get("name", "?"))
        self.kind = baseline.get("kind")
        self.margin = float(margin)
        if self.kind == "numeric":
            lo, hi = baseline.get("min"), baseline.get("max")
            if lo is None or hi is None:
                raise ConfigError(f"feature {self.name!r}: numeric baseline needs min and max")
            self.low, self.high = float(lo) - self.margin, float(hi) + self.margin
            self._known: frozenset[str] = frozenset()
        elif self.kind == "categorical":
            self._known = frozenset(str(c) for c in (baseline.get("categories") or {}))
        else:
            raise ConfigError(f"feature {self.name!r}: unknown kind {self.kind!r}")
        self.count = self.missing = self.out_of_range = self.unseen = 0

    def merge(self, other: FeatureQuality) -> None:
        """Add another window's counters of the same feature."""
        self.count += other.count
        self.missing += other.missing
        self.out_of_range += other.out_of_range
        self.unseen += other.unseen

    def empty(self) -> Self:
        """The same counters at zero, sharing the baseline's range and categories."""
        fresh = copy.copy(self)
        fresh.count = fresh.missing = fresh.out_of_range = fresh.unseen = 0
        return fresh

    def update(self, values: Values) -> None:
        """Add a batch of raw values."""
        if self.kind == "numeric":
            column = values if isinstance(values, Column) else Column(values)  # converted once
            x, present = column.floats(), column.present()
            self.count += int(x.size)
            self.missing += int(x.size - present.size)
            self.out_of_range += int(np.count_nonzero((present < self.low) | (present > self.high)))
            return
        tally, missing = category_tally(values)
        self.count += sum(tally.values()) + missing
        self.missing += missing
        self.unseen += sum(n for text, n in tally.items() if text not in self._known)

    def get(self) -> Quality:
        """The window's quality figures."""
        present = self.count - self.missing
        return Quality(
            count=self.count,
            missing_rate=self.missing / self.count if self.count else None,
            out_of_range_rate=self.out_of_range / present if present else None,
            unseen_rate=self.unseen / present if present else None,
        )

    def state(self) -> dict[str, Any]:
        """The window counters (JSON-able)."""
        return {
            "margin": self.margin,
            "count": self.count,
            "missing": self.missing,
            "out_of_range": self.out_of_range,
            "unseen": self.unseen,
        }

    @classmethod
    def from_state(cls, baseline: Mapping[str, Any], state: Mapping[str, Any]) -> Self:
        """Rebuild from a baseline feature and a ``state()``."""
        q = cls(baseline, margin=float(state.get("margin", 0.0)))
        q.count = int(state["count"])
        q.missing = int(state["missing"])
        q.out_of_range = int(state["out_of_range"])
        q.unseen = int(state["unseen"])
        return q
