"""Which messages to apply one at a time, and which to dead-letter, after a batch failed.

An unexpected exception while a batch is applied (a bug, a library error on odd input) is the
fault of one of its records, not the process's. The loop reloads its state from Redis and
rewinds; the messages of the failed batch are then *suspects*, applied one at a time with a
commit after each, so that the state holds every other message exactly once. A message that
fails on its own is a *culprit*: read again after the next rewind, it is dead-lettered instead
of applied, and its offset passes with the next transaction. Both sets are bounded.

>>> iso = Isolation()
>>> iso.failed([("t", 0, 1), ("t", 0, 2)], ValueError("x"))
>>> iso.suspect([("t", 0, 2), ("t", 0, 3)]), iso.culprit(("t", 0, 2))
(True, None)
>>> iso.failed([("t", 0, 2)], ValueError("x"))
>>> iso.culprit(("t", 0, 2))
"ValueError('x')"
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

Coords = tuple[str, int, int]  # topic, partition, offset

MAX_SUSPECTS = 100_000  # a few failed batches' worth; beyond it the oldest are forgotten
MAX_CULPRITS = 10_000


class Isolation:
    """The suspects of failed batches and the culprits found among them."""

    def __init__(self) -> None:
        self._suspects: OrderedDict[Coords, None] = OrderedDict()
        self._culprits: OrderedDict[Coords, str] = OrderedDict()

    def failed(self, batch: list[Coords], error: BaseException) -> None:
        """Applying these messages raised ``error``: one alone is a culprit, more are suspects."""
        if len(batch) == 1:
            self._culprits[batch[0]] = repr(error)[:500]
            self._suspects.pop(batch[0], None)
            _trim(self._culprits, MAX_CULPRITS)
            return
        self._suspects.update(dict.fromkeys(batch))
        _trim(self._suspects, MAX_SUSPECTS)

    def suspect(self, batch: Iterable[Coords]) -> bool:
        """Whether any of these messages was in a failed batch (apply them one at a time)."""
        return bool(self._suspects) and any(c in self._suspects for c in batch)

    def passed(self, coords: Coords) -> None:
        """The message was applied on its own."""
        self._suspects.pop(coords, None)

    def culprit(self, coords: Coords) -> str | None:
        """The error the message raised on its own, if it did (dead-letter it)."""
        return self._culprits.get(coords) if self._culprits else None


def _trim(items: OrderedDict[Coords, object], most: int) -> None:
    while len(items) > most:
        items.popitem(last=False)
