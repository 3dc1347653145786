"""Joining predictions with their actuals by association id: first actual wins, any order.

The entries of a batch's association ids are read from the join store first; the joiner then
applies the batch in order, returns the joined rows, and gives the entries to write back (in
the same transaction as the window state and the offsets). One entry per association id holds
a field per model's prediction and the actual:

- a prediction already present (a replayed scorer batch) is ignored;
- an actual already present is a duplicate and ignored: the first one wins;
- an actual arriving first is kept, and joined when each prediction arrives;
- every model's prediction for the id is joined with the same actual, so the champion and the
  challengers are compared on the same joined events.

A joined row also carries ``others``, the predictions (label or value) of the other models
already in the entry, by their 16 characters, and ``by_actual``, whether the actual's arrival
formed it: with them a caller sees each (champion, challenger, actual) triple complete exactly
once, when the last of the three arrives (``services.drift.paired``).

An entry is kept small, since Redis holds one per prediction for the join TTL: a prediction is
the field ``p:<the model id's first 16 characters>`` holding ``[y, q, t, v, s, w]`` (label or
value, score, event time, version, served, window), the actual is ``a`` holding ``[y, t]``
(label, actual time). 71 bytes for a credit prediction where the former layout
(``{"p:<model id>": {"y": ..., "q": ..., ...}}``) took 143; entries of that layout are
still read (``_decode``). An actual joined later names its models by their 16 characters: the
joiner's ``model_id`` callable gives back the full id (the reference book's models).

>>> j = Joiner({})
>>> j.actual("k", "1", 50)
[]
>>> rows = j.prediction("k", "m1", ["1", None, 10, 1, True, 3])
>>> [(r.model_id, r.label, r.delay_ms) for r in rows]
[('m1', '1', 40)]
>>> j.actual("k", "0", 60) is None
True
>>> j.writes()
[('k', '{"a":["1",50],"p:m1":["1",null,10,1,true,3]}', True)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import Any

import orjson

ACTUAL = "a"
PREDICTION = "p:"
TAG = 16  # characters of a model id kept in its field name: 64 bits, unique per deployment
# The former layout's keys, in list order, with the value a missing key stood for.
FORMER_PREDICTION = {"y": None, "q": None, "t": 0, "v": 0, "s": False, "w": None}
NO_OTHERS: Mapping[str, Any] = MappingProxyType({})  # shared: most entries hold one model


@dataclasses.dataclass(frozen=True)
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
    # The other models' predictions in the entry when this row was formed, by model id tag.
    others: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    by_actual: bool = False  # formed by the actual's arrival, not by a prediction's

    @property
    def delay_ms(self) -> int:
        """Label delay: actual time minus event time."""
        return self.actual_time - self.event_time


def _dumps(entry: dict[str, list[Any]]) -> str:
    """Compact JSON (orjson: a thousand entries per batch, ~0.3 us each instead of ~3 us)."""
    return orjson.dumps(entry).decode()


def _decode(raw: Any) -> dict[str, list[Any]]:
    """A stored entry; one of the former layout (objects, full model ids) is converted."""
    entry: dict[str, Any] = orjson.loads(raw)
    if all(type(v) is list for v in entry.values()):
        return entry
    out: dict[str, list[Any]] = {}
    for field, value in entry.items():
        if type(value) is not dict:
            out[field] = value
        elif field == ACTUAL:
            out[field] = [value["y"], value.get("t", 0)]
        else:
            out[PREDICTION + field[len(PREDICTION) :][:TAG]] = [
                value.get(k, missing) for k, missing in FORMER_PREDICTION.items()
            ]
    return out


class Joiner:
    """Applies predictions and actuals to fetched entries; collects the writes to make."""

    def __init__(
        self, entries: Mapping[Hashable, Any], model_id: Callable[[str], str] = str
    ) -> None:
        """``entries``: the stored JSON of the ids that have an entry (str or bytes);
        ``model_id``: the full id of a model from its first ``TAG`` characters."""
        self.entries: dict[Hashable, dict[str, list[Any]]] = {
            key: _decode(raw) for key, raw in entries.items()
        }
        self.model_id = model_id
        self._stored = frozenset(self.entries)
        self._changed: dict[Hashable, None] = {}  # keys written by this batch, in order

    def writes(self) -> list[tuple[Hashable, str, bool]]:
        """(key, entry JSON, whether the store has no entry yet) of each entry changed."""
        return [(k, _dumps(self.entries[k]), k not in self._stored) for k in self._changed]

    def prediction(self, key: Hashable, model_id: str, payload: list[Any]) -> list[Joined] | None:
        """Store a prediction, ``[y, q, t, v, s, w]`` (label or value, score, event time,
        version, served, window). Returns the rows joined now (empty without an actual), or
        None for a duplicate."""
        field = PREDICTION + model_id[:TAG]
        entry = self.entries.get(key)
        if entry is None:  # the common case, an id seen for the first time
            self.entries[key] = {field: payload}
            self._changed[key] = None
            return []
        if field in entry:
            return None
        actual = entry.get(ACTUAL)
        others = _predictions(entry) if actual is not None else NO_OTHERS
        entry[field] = payload
        self._changed[key] = None
        return [] if actual is None else [_joined(model_id, payload, actual, others, False)]

    def actual(self, key: Hashable, label: Any, actual_time: int) -> list[Joined] | None:
        """Store an actual; the rows it joins, or None if a duplicate."""
        entry = self.entries.setdefault(key, {})
        if ACTUAL in entry:
            return None
        payload = entry[ACTUAL] = [label, actual_time]
        self._changed[key] = None
        ys = _predictions(entry)
        return [
            _joined(self.model_id(tag), entry[PREDICTION + tag], payload, _without(ys, tag), True)
            for tag in sorted(ys)
        ]


def _predictions(entry: Mapping[str, list[Any]]) -> Mapping[str, Any]:
    """The prediction (label or value) of each model in an entry, by model id tag."""
    ys = {f[len(PREDICTION) :]: p[0] for f, p in entry.items() if f.startswith(PREDICTION)}
    return ys or NO_OTHERS


def _without(ys: Mapping[str, Any], tag: str) -> Mapping[str, Any]:
    """The predictions of the models other than ``tag``'s."""
    if len(ys) == 1:
        return NO_OTHERS
    return {t: y for t, y in ys.items() if t != tag}


def _joined(
    model_id: str, p: list[Any], a: list[Any], others: Mapping[str, Any], by_actual: bool
) -> Joined:
    y, q, t, v, s, w = p
    return Joined(
        model_id=model_id,
        version=int(v or 0),
        served=bool(s),
        prediction=y,
        score=q,
        label=a[0],
        event_time=int(t or 0),
        actual_time=int(a[1] or 0),
        window=w,
        others=others,
        by_actual=by_actual,
    )
