"""The one interface every drift statistic implements, and its suggested alert thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self

from services.drift.statistics.binning import Values

Direction = Literal["above", "below"]


@dataclass(frozen=True)
class Suggested:
    """Default thresholds: drift when the value is beyond ``warning`` / ``critical``."""

    warning: float
    critical: float
    direction: Direction


class Statistic(Protocol):
    """A drift statistic of one feature's window against its baseline.

    ``update`` adds a micro-batch (missing values are ignored, quality counts them); ``get``
    returns the value, or None while the window has fewer than ``min_count`` observations (PSI
    pools bins below it and needs fewer: ``PSI.needed``);
    ``state`` / ``from_state`` persist the window as plain JSON-able data.
    """

    name: ClassVar[str]
    suggested: ClassVar[Suggested]

    @property
    def count(self) -> int:
        """Observations in the window (missing values excluded)."""
        ...

    def update(self, values: Values) -> None:
        """Add a batch of raw values."""
        ...

    def get(self) -> float | None:
        """The statistic for the window so far, or None with too few observations."""
        ...

    def state(self) -> dict[str, Any]:
        """The window aggregates as JSON-able data."""
        ...

    def merge(self, other: Self) -> None:
        """Add another window's counts of the same statistic on the same baseline (windows
        filled by several drift processes become one)."""
        ...

    def empty(self) -> Self:
        """The same statistic with an empty window, sharing what it derived from the baseline
        (bins, grids): a new window's statistics cost only their counters."""
        ...

    @classmethod
    def from_state(cls, baseline: Mapping[str, Any], state: Mapping[str, Any]) -> Self:
        """Rebuild from a baseline feature and a ``state()``."""
        ...
