"""Jensen-Shannon distance (base 2, in [0, 1]) between the window and the baseline's bins.

The distance is the square root of the JS divergence, computed on raw proportions (no smoothing
is needed: the mixture is never zero where either side has mass). Bins are those of
:mod:`services.drift.statistics.binning`.

Suggested thresholds: warning 0.1, critical 0.2. Without drift and 10 bins the distance is
about ``sqrt(k / (8 n ln 2))`` (0.04 at n = 1,000); a 0.5 standard-deviation mean shift gives
about 0.2.

>>> base = {"name": "c", "kind": "categorical", "bin_edges": [], "bin_counts": [],
...         "categories": {"a": 50, "b": 50}}
>>> js = JensenShannon(base, min_count=2)
>>> js.update(["z", "z"])
>>> js.get()
1.0
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

from services.drift.statistics.base import Suggested
from services.drift.statistics.binned import BinnedStatistic


class JensenShannon(BinnedStatistic):
    """Jensen-Shannon distance, base 2 (0 identical, 1 disjoint)."""

    name = "jensen_shannon"
    suggested = Suggested(warning=0.1, critical=0.2, direction="above")

    def _compute(self, window: np.ndarray, reference: np.ndarray) -> float:
        # Rounding can leave a tiny negative divergence inside scipy, hence the clip.
        return float(np.clip(np.nan_to_num(jensenshannon(window, reference, base=2)), 0.0, 1.0))
