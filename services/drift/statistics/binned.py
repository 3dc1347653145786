"""Shared window state of the statistics computed on the baseline's bins (PSI, JS, chi-square)."""

from __future__ import annotations

import abc
import copy
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from services.common.errors import ConfigError
from services.drift.statistics.base import Suggested
from services.drift.statistics.binning import Binning, Values


class BinnedStatistic(abc.ABC):
    """A statistic of the window's counts per baseline bin; subclasses define ``_compute``."""

    name: ClassVar[str]
    suggested: ClassVar[Suggested]
    default_min_count: ClassVar[int] = 500

    def __init__(self, baseline: Mapping[str, Any], min_count: int | None = None) -> None:
        self.binning = Binning(baseline)
        self.min_count = self.default_min_count if min_count is None else int(min_count)
        if self.min_count < 1:
            raise ConfigError(f"{self.name}: min_count must be >= 1")
        self.window = np.zeros(self.binning.size, dtype=np.int64)

    @property
    def count(self) -> int:
        """Observations in the window (missing values excluded)."""
        return int(self.window.sum())

    def update(self, values: Values) -> None:
        """Add a batch of raw values."""
        self.window += self.binning.counts(values)

    def get(self) -> float | None:
        """The statistic for the window so far, or None with too few observations."""
        if self.count < self.min_count:
            return None
        return float(self._compute(self.window.astype(float), self.binning.reference))

    @abc.abstractmethod
    def _compute(self, window: np.ndarray, reference: np.ndarray) -> float:
        """The statistic from window and reference counts per bin."""

    def merge(self, other: Self) -> None:
        """Add another window's counts per bin (the same statistic on the same baseline)."""
        if other.window.shape != self.window.shape:
            raise ConfigError(f"{self.name}: cannot merge windows on different bins")
        self.window = self.window + other.window

    def empty(self) -> Self:
        """The same statistic with an empty window, sharing the binning."""
        fresh = copy.copy(self)
        fresh.window = np.zeros_like(self.window)
        return fresh

    def state(self) -> dict[str, Any]:
        """The window counts per bin (JSON-able)."""
        return {"stat": self.name, "min_count": self.min_count, "counts": self.window.tolist()}

    @classmethod
    def from_state(cls, baseline: Mapping[str, Any], state: Mapping[str, Any]) -> Self:
        """Rebuild from a baseline feature and a ``state()``."""
        stat = cls(baseline, min_count=state.get("min_count"))
        counts = np.asarray(state.get("counts", []), dtype=np.int64)
        if counts.shape != stat.window.shape:
            # The baseline changed under the stored window: its counts are meaningless now.
            raise ConfigError(f"{cls.name}: stored state does not match the baseline's bins")
        stat.window = counts
        return stat
