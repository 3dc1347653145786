"""Joining predictions with their actuals by association id: first actual wins, any order.

The entries of a batch's association ids are read from the join store first; the joiner then
applies the batch in order, returns the joined rows, and gives the entries to write back (in
the same transaction as the window state and the offsets). One entry per association id holds
a field per model's prediction (``p:<model_id>``) and the actual (``a``):

- a prediction already present (a replayed scorer batch) is ignored;
- an actual already present is a duplicate and ignored: the first one wins;
- an actual arriving first is kept, and joined when each prediction arrives;
- every model's prediction for the id is joined with the same actual, so the champion and the
  challengers are compared on the same joined events.

>>> j = Joiner({})
>>> j.actual("k", {"y": "1", "t": 50})
[]
>>> [(r.model_id, r.label, r.delay_ms) for r in j.prediction("k", "m1", {"y": "1", "t": 10})]
[('m1', '1', 40)]
>>> j.actual("k", {"y": "0", "t": 60}) is None
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

ACTUAL = "a"
PREDICTION = "p:"


@dataclass(frozen=True)
class Joined:
    """One model's prediction with its actual."""

    model_id: str
    version: int
    served: bool
    prediction: Any
    score: float | None
    label: Any
    event_time: int
    actual_time: int
    window: Any  # the window the prediction was counted in (None: not a counted prediction)

    @property
    def delay_ms(self) -> int:
        """Label delay: actual time minus event time."""
        return self.actual_time - self.event_time


def _dumps(entry: dict[str, Any]) -> str:
    """Compact JSON (orjson: a thousand entries per batch, ~0.3 us each instead of ~3 us)."""
    return orjson.dumps(entry).decode()


def _decode(raw: Any) -> dict[str, Any]:
    return orjson.loads(raw)  # type: ignore[no-any-return]


class Joiner:
    """Applies predictions and actuals to fetched entries; collects the writes to make."""

    def __init__(self, entries: Mapping[Hashable, Any]) -> None:
        """``entries``: the stored JSON of the ids that have an entry (str or bytes)."""
        self.entries: dict[Hashable, dict[str, dict[str, Any]]] = {
            key: _decode(raw) for key, raw in entries.items()
        }
        self._stored = frozenset(self.entries)
        self._changed: dict[Hashable, None] = {}  # keys written by this batch, in order

    def _put(self, key: Hashable, field: str, payload: dict[str, Any]) -> None:
        self.entries.setdefault(key, {})[field] = payload
        self._changed[key] = None

    def writes(self) -> list[tuple[Hashable, str, bool]]:
        """(key, entry JSON, whether the store has no entry yet) of each entry changed."""
        return [(k, _dumps(self.entries[k]), k not in self._stored) for k in self._changed]

    def prediction(
        self, key: Hashable, model_id: str, payload: dict[str, Any]
    ) -> list[Joined] | None:
        """Store a prediction (y, q score, t event time, v version, s served, w window).

        Returns the rows joined now (empty without an actual), or None for a duplicate.
        """
        field = PREDICTION + model_id
        entry = self.entries.get(key)
        if entry is None:  # the common case, an id seen for the first time
            self.entries[key] = {field: payload}
            self._changed[key] = None
            return []
        if field in entry:
            return None
        self._put(key, field, payload)
        actual = self.entries[key].get(ACTUAL)
        return [] if actual is None else [_joined(model_id, payload, actual)]

    def actual(self, key: Hashable, payload: dict[str, Any]) -> list[Joined] | None:
        """Store an actual (y label, t actual time); the rows it joins, or None if a duplicate."""
        entry = self.entries.get(key, {})
        if ACTUAL in entry:
            return None
        self._put(key, ACTUAL, payload)
        return [
            _joined(field[len(PREDICTION) :], p, payload)
            for field, p in sorted(self.entries[key].items())
            if field.startswith(PREDICTION)
        ]


def _joined(model_id: str, p: Mapping[str, Any], a: Mapping[str, Any]) -> Joined:
    return Joined(
        model_id=model_id,
        version=int(p.get("v", 0)),
        served=bool(p.get("s", False)),
        prediction=p.get("y"),
        score=p.get("q"),
        label=a["y"],
        event_time=int(p.get("t", 0)),
        actual_time=int(a.get("t", 0)),
        window=p.get("w"),
    )
