"""Population Stability Index of a window against the baseline's bins.

``PSI = sum_i (w_i - r_i) * ln(w_i / r_i)`` over the baseline's quantile bins (numeric, first
and last bins open-ended) or its categories plus one unseen bucket (categorical).

Smoothing: both distributions get half a pseudo-count per bin, ``p_i = (c_i + 0.5) / (n + 0.5k)``,
so an empty bin (always the case for the reference's unseen bucket) gives a large but finite
term instead of infinity; half a count is the Jeffreys prior and biases full windows negligibly.

Suggested thresholds (the industry convention): warning 0.1, critical 0.25. With the default
``min_count`` of 500 and 10 bins, a window without drift stays far below 0.1 (expected PSI is
about (k - 1) / n), while a 0.5 standard-deviation mean shift gives about 0.2.

>>> base = {"name": "x", "kind": "numeric", "bin_edges": [0.0, 1.0, 2.0], "bin_counts": [50, 50]}
>>> psi = PSI(base, min_count=2)
>>> psi.update([0.5, 1.5, 0.2, 1.7])
>>> round(psi.get(), 6)
0.0
"""

from __future__ import annotations

import numpy as np

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

    def _compute(self, window: np.ndarray, reference: np.ndarray) -> float:
        w, r = smoothed(window), smoothed(reference)
        return float(np.sum((w - r) * np.log(w / r)))
