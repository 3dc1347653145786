"""Prediction messages of a micro-batch decoded at once (numpy), through layouts learned.

The drift service reads a Prediction for every event. Per record, the hand-written reader
(``hot_codecs``) spends ~4 us; here a batch's messages are read field by field for all of them
(``columnar``), through a *layout* learned from a decoded record: its model-specific middle
(deployment, model name, version, model id, role, served) and the keys of its probability map.
What the drift service uses of each is handed out as a ``PredictionTuple`` (``as_tuple`` makes
the same from a decoded record): a tuple is built straight from the columns, where a record
dict per row was a sixth of the service's time.

Only the plainest bodies are taken: our header, an association id and a predicted label under
64 ASCII bytes without NUL (or a finite number, or none), the learned middle, the learned
probability keys in the learned order with finite values, no humility flags, longs of at most
9 varint bytes (a partition of at most 5, in the int range), nothing after the record. They are
decoded as fastavro decodes them. Every other message is returned by index for the
per-message decoder; the unit tests hold both paths to the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from services.common.columnar import (
    MAX_LAYOUTS,
    MIN_BATCH,
    DoublesTemplate,
    byte,
    doubles,
    equal,
    joined,
    longs,
    short_ascii,
    template_doubles,
    texts,
)
from services.common.hot_codecs import middle_bytes, write_long, write_string
from services.common.serde import Serde

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# (association id, deployment, model id, model version, served, prediction, probability map's
# keys, its values in that order, event time)
PredictionTuple = tuple[str, str, str, int, bool, Any, tuple[str, ...], tuple[float, ...], int]


def as_tuple(record: Mapping[str, Any]) -> PredictionTuple:
    """What the drift service uses of a decoded Prediction record."""
    probabilities = record.get("probabilities") or {}
    return (
        record["association_id"],
        record["deployment"],
        str(record["model_id"]),
        int(record["model_version"]),
        bool(record["served"]),
        record.get("prediction"),
        tuple(probabilities),
        tuple(probabilities.values()),
        int(record["event_time"]),
    )


@dataclass(frozen=True)
class _Layout:
    middle: np.ndarray  # deployment .. served, as written
    model: tuple[str, str, int, bool]  # deployment, model id, version, served: as_tuple's
    probabilities: DoublesTemplate  # the map: its count, keys, doubles and end
    names: tuple[str, ...]  # the map's keys


def _layout(record: Mapping[str, Any]) -> _Layout | None:
    try:
        middle = middle_bytes(record)
        names = tuple(record["probabilities"])
        pieces = [write_long(len(names))] if names else []
        pieces += [piece for name in names for piece in (write_string(name), None)]
    except Exception:  # noqa: BLE001 (a record the plain path does not take)
        return None
    pieces.append(b"\x00")  # the end of the map (an empty map is this byte alone)
    return _Layout(
        np.frombuffer(middle, dtype=np.uint8),
        (
            record["deployment"],
            str(record["model_id"]),
            int(record["model_version"]),
            bool(record["served"]),
        ),
        DoublesTemplate.of(pieces),
        names,
    )


@dataclass(frozen=True)
class PredictionRows:
    """The Predictions of one layout taken from a batch: their indices and tuples."""

    rows: np.ndarray  # indices into the batch, ascending
    tuples: list[PredictionTuple]
    times: np.ndarray  # their event times (int64), for checks on the whole column


class PredictionColumnsReader:
    """Decodes the Predictions of a batch through layouts learned from decoded records."""

    def __init__(self, header: bytes, limit: int) -> None:
        self.header = np.frombuffer(header, dtype=np.uint8)
        self.limit = limit
        self._layouts: dict[tuple[bytes, tuple[str, ...]], _Layout] = {}

    @classmethod
    def for_predictions(cls, codec: Serde) -> PredictionColumnsReader:
        """A reader of the Predictions ``codec`` decodes (same header, same size limit)."""
        return cls(codec.header("Prediction"), codec.limit("Prediction"))

    def learn(self, record: Mapping[str, Any]) -> None:
        """Remember the layout of a record the per-message decoder accepted."""
        layout = _layout(record)
        if layout is None:
            return
        key = (layout.middle.tobytes(), layout.names)
        if key not in self._layouts:
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = layout

    def read(self, values: Sequence[bytes]) -> tuple[list[PredictionRows], list[int]]:
        """The predictions taken, by layout, and the indices of the others."""
        n = len(values)
        if n < MIN_BATCH or not self._layouts:
            return [], list(range(n))
        buf, starts, lengths = joined(values)
        h = self.header.size
        ok = (lengths > h) & (lengths <= self.limit) & equal(buf, starts, self.header)
        pos = starts + h
        taken, length, chars = short_ascii(buf, pos)
        ok &= taken
        ids = texts(chars)
        pos = pos + 1 + length
        done = np.zeros(n, dtype=bool)
        out = []
        for layout in list(self._layouts.values()):
            rows = np.flatnonzero(ok & ~done & equal(buf, pos, layout.middle))
            if rows.size:
                ok_rows, end, *columns = _read(buf, layout, rows, pos[rows] + layout.middle.size)
                keep = ok_rows & (end == (starts + lengths)[rows])
                if keep.any():
                    done[rows[keep]] = True
                    taken = _tuples(layout, ids[rows[keep]], *(c[keep] for c in columns))
                    out.append(PredictionRows(rows[keep], taken, columns[-1][keep]))
        return out, np.flatnonzero(~done).tolist()


def _read(
    buf: np.ndarray, layout: _Layout, rows: np.ndarray, pos: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(taken, end, predictions, probabilities, event times) of a layout's rows."""
    branch = byte(buf, pos)
    pos = pos + 1
    ok = (branch == 0) | (branch == 2) | (branch == 4)
    taken, length, chars = short_ascii(buf, pos)
    is_text, is_number = branch == 2, branch == 4
    ok &= taken | ~is_text
    numbers = doubles(buf, pos)
    ok &= np.isfinite(numbers) | ~is_number
    predictions = np.full(rows.size, None, dtype=object)
    if is_text.any():
        predictions[is_text] = texts(chars[is_text])
    if is_number.any():
        predictions[is_number] = numbers[is_number].tolist()
    pos = pos + np.where(is_text, 1 + length, 0) + np.where(is_number, 8, 0)
    taken, probabilities = template_doubles(buf, pos, layout.probabilities)
    ok &= taken
    pos = pos + layout.probabilities.size
    ok &= byte(buf, pos) == 0  # no humility flags
    ok &= byte(buf, pos + 1) <= 1  # overridden: a boolean
    pos = pos + 2
    fields = []
    for most in (9, 9, 5, 9):  # event time, scored time, input partition, input offset
        taken, value, used = longs(buf, pos, most)
        ok &= taken
        fields.append(value)
        pos = pos + used
    ok &= (fields[2] >= _INT_MIN) & (fields[2] <= _INT_MAX)
    return ok, pos, predictions, probabilities, fields[0]


def _tuples(
    layout: _Layout,
    ids: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    times: np.ndarray,
) -> list[PredictionTuple]:
    """Rows read as ``as_tuple`` makes them of the records the per-message decoder gives."""
    n = ids.size
    deployment, model_id, version, served = layout.model
    return list(
        zip(
            ids.tolist(),
            repeat(deployment, n),
            repeat(model_id, n),
            repeat(version, n),
            repeat(served, n),
            predictions.tolist(),
            repeat(layout.names, n),
            map(tuple, probabilities.tolist()),
            times.tolist(),
            strict=True,
        )
    )
