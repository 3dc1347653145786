"""How a batch of raw values of one feature falls into its baseline's bins.

A batch can come as a ``Column``, so that the statistics and quality counters of one feature
share what they derive from it (its floats, or its category tally) instead of each deriving it.

Numeric features use the baseline's quantile edges as half-open bins ``[e_i, e_i+1)`` like
``numpy.histogram``, with the first and last bins open-ended so values outside the training range
still land somewhere. Categorical features get one bin per baseline category plus a final
"unseen" bin for values the model never saw.

>>> b = Binning({"name": "x", "kind": "numeric", "bin_edges": [0.0, 1.0, 2.0],
...              "bin_counts": [5, 5]})
>>> b.counts([-3.0, 0.5, 1.0, None, 9.0]).tolist()
[2, 2]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from services.common.errors import ConfigError


class Column:
    """A batch of one feature's raw values, shared by the statistics and quality counters that
    take it: each form they read (floats, present floats, category tally) is computed once."""

    __slots__ = ("values", "_floats", "_present", "_tally")

    def __init__(self, values: np.ndarray | Sequence[Any]) -> None:
        self.values = values
        self._floats: np.ndarray | None = None
        self._present: np.ndarray | None = None
        self._tally: tuple[dict[str, int], int] | None = None

    def floats(self) -> np.ndarray:
        """The batch as floats; None becomes NaN (missing)."""
        if self._floats is None:
            self._floats = _floats(self.values)
        return self._floats

    def present(self) -> np.ndarray:
        """``present_values`` of the batch."""
        if self._present is None:
            self._present = _present(self.floats())
        return self._present

    def tally(self) -> tuple[dict[str, int], int]:
        """``category_tally`` of the batch."""
        if self._tally is None:
            self._tally = _tally(self.values)
        return self._tally


Values = np.ndarray | Sequence[Any] | Column


def present_values(values: Values) -> np.ndarray:
    """The values as floats, missing ones (None, NaN) left out."""
    return values.present() if isinstance(values, Column) else _present(_floats(values))


def _floats(values: np.ndarray | Sequence[Any]) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def _present(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x)]


def category_tally(values: Values) -> tuple[dict[str, int], int]:
    """How often each present value occurs (as text), and how many were missing (None or NaN).

    A count by hashing: a window's categorical column has a handful of distinct values, and
    converting every value to a numpy string to sort them cost ~5x as much (1,000 values: ~130
    us against ~26 us).
    """
    if isinstance(values, Column):
        return values.tally()
    return _tally(values)


def _tally(values: np.ndarray | Sequence[Any]) -> tuple[dict[str, int], int]:
    tally: dict[str, int] = {}
    missing = 0
    for value, n in Counter(np.asarray(values, dtype=object).ravel().tolist()).items():
        if value is None or value != value:  # noqa: PLR0124 (NaN is the one value unequal to itself)
            missing += n
        else:
            text = str(value)
            tally[text] = tally.get(text, 0) + n
    return tally, missing


class Binning:
    """The reference bins of one feature baseline and the mapping of values into them."""

    def __init__(self, feature: Mapping[str, Any]) -> None:
        self.name = str(feature.get("name", "?"))
        self.kind = feature.get("kind")
        if self.kind == "numeric":
            edges = np.asarray(feature.get("bin_edges") or [], dtype=float)
            ref = np.asarray(feature.get("bin_counts") or [], dtype=float)
            if edges.size < 2 or ref.size != edges.size - 1 or np.any(np.diff(edges) < 0):
                raise ConfigError(
                    f"feature {self.name!r}: numeric baseline needs sorted bin_edges and "
                    f"len(bin_counts) == len(bin_edges) - 1"
                )
            self.edges = edges
            self.categories: list[str] = []
            self.reference = ref
        elif self.kind == "categorical":
            cats = feature.get("categories") or {}
            if not cats:
                raise ConfigError(f"feature {self.name!r}: categorical baseline has no categories")
            self.edges = np.empty(0)
            self.categories = sorted(str(c) for c in cats)
            counts = {str(c): float(n) for c, n in cats.items()}
            self._index = {c: i for i, c in enumerate(self.categories)}
            # The last bin is "unseen": by construction the reference never has any.
            self.reference = np.array([counts[c] for c in self.categories] + [0.0])
        else:
            raise ConfigError(f"feature {self.name!r}: unknown kind {self.kind!r}")
        if self.reference.sum() <= 0:
            raise ConfigError(f"feature {self.name!r}: baseline has no observations")

    @property
    def size(self) -> int:
        """Number of bins (for categories, including the unseen bin)."""
        return int(self.reference.size)

    def counts(self, values: Values) -> np.ndarray:
        """Counts per bin of the present values of a batch; missing values are ignored."""
        if self.kind == "numeric":
            x = present_values(values)
            idx = np.searchsorted(self.edges[1:-1], x, side="right")
            return np.bincount(idx, minlength=self.size)
        out = np.zeros(self.size, dtype=np.int64)
        unseen = self.size - 1
        for text, n in category_tally(values)[0].items():
            out[self._index.get(text, unseen)] += n
        return out
