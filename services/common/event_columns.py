"""FeatureEvent messages of a micro-batch decoded at once into feature columns (numpy).

The drift service needs a batch's events as columns, one array per feature, not as records.
Per record, the hand-written reader (``hot_codecs``) still spends ~5 us; here the messages of a
batch are joined into one byte array and every field is read for all of them with a handful of
numpy operations, through a *layout* learned from a decoded record: the deployment, the feature
map's keys, their order and the kind of each value.

Only the plainest bodies are taken: our header, an association id and every string under 64
ASCII bytes without NUL, an event time of at most 9 varint bytes, the learned keys in the
learned order with values of the learned kinds, finite numbers, no attributes, nothing after
the record. Those are decoded exactly as fastavro decodes them (doubles bit for bit, ASCII
strings as text). Every other message is returned by index for the per-message decoder, which
decodes or refuses it as before; the unit tests hold both paths to the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.columnar import (
    MAX_LAYOUTS,
    MIN_BATCH,
    DoublesTemplate,
    byte,
    equal,
    joined,
    longs,
    short_ascii,
    template_doubles,
    texts,
)
from services.common.hot_codecs import write_long, write_string
from services.common.serde import Serde

_NUMERIC, _TEXT, _NULL = "numeric", "text", "null"


@dataclass(frozen=True)
class EventColumns:
    """The events of one deployment taken from a batch: their indices, times and features."""

    deployment: str
    rows: np.ndarray  # indices into the batch, ascending
    times: np.ndarray  # event_time, int64
    columns: dict[str, tuple[str, np.ndarray]]  # name -> (kind, float64 or object array)

    def take(self, keep: np.ndarray) -> EventColumns:
        """The events whose ``keep`` (a mask or indices over these rows) is set."""
        return EventColumns(
            self.deployment,
            self.rows[keep],
            self.times[keep],
            {name: (kind, a[keep]) for name, (kind, a) in self.columns.items()},
        )


@dataclass(frozen=True)
class _NumericRun:
    """Consecutive numeric features: their names, and their keys and doubles as a template."""

    names: tuple[str, ...]
    template: DoublesTemplate


Step = tuple[str, str, np.ndarray] | _NumericRun  # (name, kind, key and branch bytes) or a run


@dataclass(frozen=True)
class _Layout:
    deployment: str
    prefix: np.ndarray  # the deployment's bytes (after the association id)
    count: np.ndarray  # the feature map's block count
    steps: tuple[Step, ...]
    signature: tuple[Any, ...]


def _numeric_run(keys: list[tuple[str, bytes]]) -> _NumericRun:
    pieces = [piece for _name, key in keys for piece in (key, None)]
    return _NumericRun(tuple(name for name, _ in keys), DoublesTemplate.of(pieces))


def _signature(record: Mapping[str, Any]) -> tuple[Any, ...]:
    kinds = {float: _NUMERIC, str: _TEXT, type(None): _NULL}
    features = record["features"]
    return (record["deployment"], tuple((k, kinds.get(v.__class__)) for k, v in features.items()))


def _layout(record: Mapping[str, Any]) -> _Layout | None:
    steps: list[Step] = []
    run: list[tuple[str, bytes]] = []  # numeric features not yet in a step
    for name, value in record["features"].items():
        if value.__class__ is float:
            run.append((name, write_string(name) + b"\x02"))
            continue
        if value.__class__ is str:
            kind, branch = _TEXT, b"\x04"
        elif value is None:
            kind, branch = _NULL, b"\x00"
        else:
            return None
        if run:
            steps.append(_numeric_run(run))
            run = []
        key = write_string(name) + branch
        steps.append((name, kind, np.frombuffer(key, dtype=np.uint8)))
    if run:
        steps.append(_numeric_run(run))
    deployment = record["deployment"]
    return _Layout(
        deployment,
        np.frombuffer(write_string(deployment), dtype=np.uint8),
        np.frombuffer(write_long(len(record["features"])), dtype=np.uint8),
        tuple(steps),
        _signature(record),
    )


class EventColumnsReader:
    """Decodes the FeatureEvents of a batch into columns through layouts learned from records."""

    def __init__(self, header: bytes, limit: int) -> None:
        self.header = np.frombuffer(header, dtype=np.uint8)  # magic and fingerprint
        self.limit = limit  # the largest FeatureEvent message accepted
        self._layouts: dict[tuple[Any, ...], _Layout] = {}

    @classmethod
    def for_events(cls, codec: Serde) -> EventColumnsReader:
        """A reader of the FeatureEvents ``codec`` decodes (same header, same size limit)."""
        return cls(codec.header("FeatureEvent"), codec.limit("FeatureEvent"))

    def learn(self, record: Mapping[str, Any]) -> None:
        """Remember the layout of a record the per-message decoder accepted."""
        if _signature(record) in self._layouts:
            return
        layout = _layout(record)
        if layout is None:
            return
        if len(self._layouts) >= MAX_LAYOUTS:
            self._layouts.clear()
        self._layouts[layout.signature] = layout

    def read(self, values: Sequence[bytes]) -> tuple[list[EventColumns], list[int]]:
        """The events taken, by deployment and layout, and the indices of the others."""
        n = len(values)
        if n < MIN_BATCH or not self._layouts:
            return [], list(range(n))
        buf, starts, lengths = joined(values)
        ends = starts + lengths
        h = self.header.size
        ok = (lengths > h) & (lengths <= self.limit)
        ok &= equal(buf, starts, self.header)
        pos = starts + h
        taken, length, _ = short_ascii(buf, pos)
        ok &= taken & (length > 0)  # a FeatureEvent's association id is never empty
        pos = pos + 1 + length
        taken_any = np.zeros(n, dtype=bool)
        groups = []
        for layout in list(self._layouts.values()):
            mine = ok & ~taken_any
            mine &= equal(buf, pos, layout.prefix)
            rows = np.flatnonzero(mine)
            if rows.size:
                group = self._read_layout(buf, layout, rows, pos[rows] + layout.prefix.size)
                if group is not None:
                    done = rows[group[0]]
                    ends_ok = group[1] == ends[done]
                    done = done[ends_ok]
                    if done.size:
                        taken_any[done] = True
                        groups.append(_subset(layout.deployment, done, group, ends_ok))
        return groups, np.flatnonzero(~taken_any).tolist()

    def _read_layout(
        self, buf: np.ndarray, layout: _Layout, rows: np.ndarray, pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[str, np.ndarray]]] | None:
        """(taken among rows, end positions, times, columns) for the rows' bodies, or None."""
        ok, times, used = longs(buf, pos)
        pos = pos + used
        ok &= equal(buf, pos, layout.count)
        pos = pos + layout.count.size
        columns: dict[str, tuple[str, np.ndarray]] = {}
        for step in layout.steps:
            if isinstance(step, _NumericRun):
                taken, values = template_doubles(buf, pos, step.template)
                ok &= taken
                for j, name in enumerate(step.names):
                    columns[name] = (_NUMERIC, values[:, j])
                pos = pos + step.template.size
                continue
            name, kind, key = step
            ok &= equal(buf, pos, key)
            pos = pos + key.size
            if kind == _TEXT:
                taken, length, chars = short_ascii(buf, pos)
                ok &= taken
                columns[name] = (kind, chars)  # made text once the rows are known
                pos = pos + 1 + length
            else:
                columns[name] = (kind, np.full(rows.size, None, dtype=object))
        if layout.count.tobytes() != b"\x00":
            ok &= byte(buf, pos) == 0  # the end of the map's only block
            pos = pos + 1
        ok &= byte(buf, pos) == 0  # no attributes
        keep = np.flatnonzero(ok)
        if not keep.size:
            return None
        columns = {
            name: (kind, texts(a[keep]) if kind == _TEXT else a[keep])
            for name, (kind, a) in columns.items()
        }
        return keep, pos[keep] + 1, times[keep], columns


def _subset(
    deployment: str,
    rows: np.ndarray,
    group: tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[str, np.ndarray]]],
    keep: np.ndarray,
) -> EventColumns:
    _, _, times, columns = group
    return EventColumns(
        deployment,
        rows,
        times[keep],
        {name: (kind, a[keep]) for name, (kind, a) in columns.items()},
    )
