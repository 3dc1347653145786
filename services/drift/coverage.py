"""Label coverage: the share of the predictions behind a window's joined labels that have one.

Labels come late: an actual joins a prediction counted in some earlier window, and goes into
the accuracy of the newest open window. A window's coverage is therefore taken over its
*sources*, the windows whose champion predictions its joined labels belong to: their
predictions with an actual so far, over their predictions. A window whose labels are for its
own predictions reads the share of those labelled, as before; a window that receives the
labels of an earlier one reads that window's share instead of 0; a window without labels
reads 0.

``CoverageBook`` keeps, per deployment, ``[predictions, labelled]`` of the last ``keep``
closed windows; older ones are pooled into one sum, which stands for any source among them.
With labels later than ``keep`` windows the coverage is that pool's share, since the reference
started: not 0, though lower than the share of the windows the labels came from while the
newest pooled windows still wait for theirs.

>>> book = CoverageBook(keep=2)
>>> book.closed(0, predictions=10, labelled=0)
>>> book.label(0), book.label(0), book.label(7)  # window 7 is not known: a late prediction
(True, True, False)
>>> book.over([0], {})
(2, 10)
>>> book.closed(1, 10, 10); book.closed(2, 4, 1); book.trim()  # window 0 is pooled
>>> book.over([0, 2], {}), book.over([5], {5: (3, 1)})
((3, 14), (1, 3))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

KEEP = 64  # closed windows kept one by one; the monitor's state grows ~16 bytes per window


class CoverageBook:
    """Predictions and labels so far of a deployment's recent closed windows, by window seq."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.windows: dict[int, list[int]] = {}  # seq -> [predictions, labelled], oldest first
        self.pooled = [0, 0]  # the windows dropped from ``windows``, added up

    def closed(self, seq: int, predictions: int, labelled: int) -> None:
        """A window closed with its champion predictions and those labelled so far."""
        if predictions:
            self.windows[seq] = [predictions, labelled]

    def trim(self) -> None:
        """Pool the oldest windows beyond ``keep``."""
        while len(self.windows) > self.keep:
            oldest = next(iter(self.windows))
            p, n = self.windows.pop(oldest)
            self.pooled = [self.pooled[0] + p, self.pooled[1] + n]

    def label(self, seq: int) -> bool:
        """A label joined a prediction of closed window ``seq``; False if no such window is
        known (counted in the pool when windows were pooled, as it may be one of them)."""
        found = self.windows.get(seq)
        if found is not None:
            found[1] += 1
            return True
        if self.pooled[1] < self.pooled[0]:
            self.pooled[1] += 1
        return False

    def over(
        self, sources: Iterable[int], open_windows: Mapping[int, tuple[int, int]]
    ) -> tuple[int, int]:
        """(labelled, predictions) of the source windows: kept, still open ((predictions,
        labelled) by seq), or else pooled (the pool counted once)."""
        labelled = predictions = 0
        pool = False
        for seq in sources:
            if seq in self.windows:
                p, n = self.windows[seq]
            elif seq in open_windows:
                p, n = open_windows[seq]
            else:
                pool = True
                continue
            predictions, labelled = predictions + p, labelled + n
        if pool:
            predictions, labelled = predictions + self.pooled[0], labelled + self.pooled[1]
        return labelled, predictions

    def state(self) -> dict[str, Any]:
        """JSON-able: the kept windows and the pool."""
        return {"windows": [[s, p, n] for s, (p, n) in self.windows.items()], "pooled": self.pooled}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, keep: int = KEEP) -> Self:
        """Rebuild from a ``state()`` (None: a monitor stored before coverage had a book)."""
        book = cls(keep)
        if state:
            book.windows = {int(s): [int(p), int(n)] for s, p, n in state["windows"]}
            book.pooled = [int(x) for x in state["pooled"]]
        return book
