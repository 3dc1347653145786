"""Kolmogorov-Smirnov test of a numeric window against the baseline; ``get()`` is the p-value.

Reference CDF: reconstructed from the baseline's quantile edges and counts, exact at every edge
(0 at the min, 1 at the max) and linear within each interior bin. The two outer bins are only
evaluated at their edges: their far edge is the sample min / max, and linear interpolation
there is badly wrong for any distribution with tails (for a normal, off by ~0.05 in CDF,
which alone would make the test fire on every window of a thousand events).

Window CDF, bounded state: instead of keeping values, the window keeps counts on a fixed grid
(every baseline edge plus ``subdivisions - 1`` points inside each interior bin), one count for
"equal to the grid point" and one for "strictly between two grid points", so both the left and
the right limit of the empirical CDF are exact at every grid point; ties and point masses
(duplicate edges of discrete features) are handled. The statistic is the largest CDF gap over
the grid points, a slight under-estimate of the true supremum, so the test is conservative.
State size: about ``2 * (bins * subdivisions)`` integers.

p-value: ``scipy.stats.kstwo`` with the two-sample effective size ``n m / (n + m)`` (n window,
m reference count), since the reference is a sample too. Suggested thresholds: warning below
0.01, critical below 0.001. Categorical features: construction raises ConfigError.

>>> base = {"name": "x", "kind": "numeric", "bin_edges": [0.0, 1.0, 2.0], "bin_counts": [50, 50]}
>>> ks = KS(base, min_count=2)
>>> ks.update([5.0, 6.0, 7.0])
>>> ks.statistic()
1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from scipy.stats import kstwo

from services.common.errors import ConfigError
from services.drift.statistics.base import Suggested
from services.drift.statistics.binning import Binning, Values, numeric_values


def reference_grid(
    edges: np.ndarray, counts: np.ndarray, subdivisions: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points and the reference CDF's left and right limits at each of them."""
    probs = counts / counts.sum()
    cum = np.concatenate([[0.0], np.cumsum(probs)])
    last = len(probs) - 1
    xs, fs = [], []
    for j, p in enumerate(probs):
        steps = 1 if j in (0, last) else subdivisions
        t = np.arange(steps + 1) / steps
        xs.append(edges[j] + (edges[j + 1] - edges[j]) * t)
        fs.append(cum[j] + p * t)
    x, f = np.concatenate(xs), np.concatenate(fs)
    # Duplicate points (shared edges, zero-width bins) carry a CDF jump: keep both limits.
    grid, inverse = np.unique(x, return_inverse=True)
    left = np.full(grid.size, np.inf)
    right = np.full(grid.size, -np.inf)
    np.minimum.at(left, inverse, f)
    np.maximum.at(right, inverse, f)
    return grid, left, np.minimum(right, 1.0)


class KS:
    """Kolmogorov-Smirnov p-value of a numeric window against the baseline (lower is drift)."""

    name: ClassVar[str] = "ks"
    suggested: ClassVar[Suggested] = Suggested(warning=0.01, critical=0.001, direction="below")
    default_min_count: ClassVar[int] = 50

    def __init__(
        self, baseline: Mapping[str, Any], min_count: int | None = None, subdivisions: int = 4
    ) -> None:
        if baseline.get("kind") != "numeric":
            raise ConfigError(f"ks applies to numeric features only, not {baseline.get('name')!r}")
        binning = Binning(baseline)
        self.min_count = self.default_min_count if min_count is None else int(min_count)
        self.subdivisions = int(subdivisions)
        if self.min_count < 1 or self.subdivisions < 1:
            raise ConfigError("ks: min_count and subdivisions must be >= 1")
        self.reference_count = float(binning.reference.sum())
        self.grid, self.ref_left, self.ref_right = reference_grid(
            binning.edges, binning.reference, self.subdivisions
        )
        # Cell 2i+1 counts values equal to grid[i]; cell 2i those strictly before it.
        self.cells = np.zeros(2 * self.grid.size + 1, dtype=np.int64)

    @property
    def count(self) -> int:
        """Observations in the window (missing values excluded)."""
        return int(self.cells.sum())

    def update(self, values: Values) -> None:
        """Add a batch of raw values."""
        x = numeric_values(values)
        x = x[~np.isnan(x)]
        i = np.searchsorted(self.grid, x, side="left")
        on_point = (i < self.grid.size) & (self.grid[np.minimum(i, self.grid.size - 1)] == x)
        self.cells += np.bincount(2 * i + on_point, minlength=self.cells.size)

    def statistic(self) -> float | None:
        """The KS distance D (largest CDF gap on the grid), or None for an empty window."""
        n = self.count
        if n == 0:
            return None
        cum = np.cumsum(self.cells) / n
        win_left, win_right = cum[0:-1:2], cum[1::2]
        return float(
            max(
                np.max(np.abs(win_left - self.ref_left)),
                np.max(np.abs(win_right - self.ref_right)),
            )
        )

    def get(self) -> float | None:
        """The p-value, or None with fewer than ``min_count`` observations."""
        n = self.count
        if n < self.min_count:
            return None
        n_eff = max(1, round(n * self.reference_count / (n + self.reference_count)))
        return float(kstwo.sf(self.statistic(), n_eff))

    def state(self) -> dict[str, Any]:
        """The grid counts (JSON-able)."""
        return {
            "stat": self.name,
            "min_count": self.min_count,
            "subdivisions": self.subdivisions,
            "counts": self.cells.tolist(),
        }

    @classmethod
    def from_state(cls, baseline: Mapping[str, Any], state: Mapping[str, Any]) -> Self:
        """Rebuild from a baseline feature and a ``state()``."""
        ks = cls(baseline, state.get("min_count"), int(state.get("subdivisions", 4)))
        counts = np.asarray(state.get("counts", []), dtype=np.int64)
        if counts.shape != ks.cells.shape:
            raise ConfigError("ks: stored state does not match the baseline's grid")
        ks.cells = counts
        return ks
