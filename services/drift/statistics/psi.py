"""Population Stability Index of a window against the baseline's bins.

``PSI = sum_i (w_i - r_i) * ln(w_i / r_i)`` over the baseline's quantile bins (numeric, first
and last bins open-ended) or its categories plus one unseen bucket (categorical).

Smoothing: both distributions get half a pseudo-count per bin, ``p_i = (c_i + 0.5) / (n + 0.5k)``,
so an empty bin (always the case for the reference's unseen bucket) gives a large but finite
term instead of infinity; half a count is the Jeffreys prior and biases full windows negligibly.

Suggested thresholds (the industry convention): warning 0.1, critical 0.25. With the default
``min_count`` of 500 and 10 bins, a window without drift stays far below 0.1 (expected PSI is
about (k - 1) / n), while a 0.5 standard-deviation mean shift gives about 0.2.

A window under ``min_count`` is computed on pooled bins (``merging``): each group expects at
least ``min_count / k`` of the window's observations, as each bin does in a window of
``min_count``, so the expected no-drift PSI stays about what it is there. ``bins()`` says how
many bins a value was computed on; with fewer than two groups there is no value, and
``needed()`` says how many observations one takes (100 for deciles and the default minimum).

>>> base = {"name": "x", "kind": "numeric", "bin_edges": [0.0, 1.0, 2.0], "bin_counts": [50, 50]}
>>> psi = PSI(base, min_count=2)
>>> psi.update([0.5, 1.5, 0.2, 1.7])
>>> round(psi.get(), 6), psi.bins()
(0.0, 2)
>>> deciles = {"name": "x", "kind": "numeric", "bin_edges": list(range(11)),
...            "bin_counts": [10] * 10}
>>> small = PSI(deciles)
>>> small.update([0.5] * 60 + [9.5] * 60)
>>> round(small.get(), 3), small.bins(), small.needed()
(0.0, 2, 100)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from services.drift.statistics import merging
from services.drift.statistics.base import Suggested
from services.drift.statistics.binned import BinnedStatistic

PSEUDO_COUNT = 0.5


def smoothed(counts: np.ndarray) -> np.ndarray:
    """Proportions with half a pseudo-count per bin (never zero)."""
    return (counts + PSEUDO_COUNT) / (counts.sum() + PSEUDO_COUNT * counts.size)


class PSI(BinnedStatistic):
    """Population Stability Index on the baseline's bins (higher means more drift)."""

    name = "psi"
    suggested = Suggested(warning=0.1, critical=0.25, direction="above")

    def __init__(self, baseline: Mapping[str, Any], min_count: int | None = None) -> None:
        super().__init__(baseline, min_count)
        ref = self.binning.reference
        # The bins that may be pooled, in pooling order: a categorical feature's unseen
        # bucket (the last bin) stays on its own, and categories go from the most frequent.
        if self.binning.kind == "categorical":
            seen = ref[:-1]
            self._order = sorted(range(seen.size), key=lambda i: (-seen[i], i))
        else:
            seen = ref
            self._order = list(range(seen.size))
        self._shares = seen / seen.sum()
        self._per_bin = self.min_count / seen.size
        floor = merging.needed(self._shares, self._per_bin, self._order)
        self._needed = self.min_count if not floor else min(floor, self.min_count)

    def needed(self) -> int:
        """Observations a window needs for a value (pooled bins below ``min_count``)."""
        return self._needed

    def _groups(self) -> list[list[int]] | None:
        """The pooled bins of a window under ``min_count``; None for the baseline's own."""
        n = self.count
        if n >= self.min_count:
            return None
        return merging.groups(self._shares, n, self._per_bin, self._order)

    def bins(self) -> int | None:
        """How many bins ``get()`` is computed on; None while it has no value."""
        if self.count < self._needed:
            return None
        pooled = self._groups()
        if pooled is None:
            return self.binning.size
        return len(pooled) + (self.binning.kind == "categorical")

    def get(self) -> float | None:
        """PSI of the window so far (on pooled bins under ``min_count``), or None with fewer
        than ``needed()`` observations."""
        if self.count < self._needed:
            return None
        window, reference = self.window.astype(float), self.binning.reference
        pooled = self._groups()
        if pooled is not None:
            if self.binning.kind == "categorical":
                pooled = [*pooled, [self.binning.size - 1]]  # the unseen bucket, alone
            window = np.array([window[g].sum() for g in pooled])
            reference = np.array([reference[g].sum() for g in pooled])
        return float(self._compute(window, reference))

    def _compute(self, window: np.ndarray, reference: np.ndarray) -> float:
        w, r = smoothed(window), smoothed(reference)
        return float(np.sum((w - r) * np.log(w / r)))
