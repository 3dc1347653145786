"""Hand-written Avro codecs for the per-event records, byte-for-byte equal to fastavro.

Every event is a FeatureEvent decoded by the scorer and the drift service, and every event turns
into a Prediction the scorer encodes and the drift service decodes. fastavro spends ~9 us per
call on these small records, most of it per-call overhead, so these paths are specialised:

- FeatureEvent bodies are read with a *template* learned per deployment: the feature map's keys,
  their order and the kind of each value. A run of numeric features is one `struct` unpack whose
  key fields are compared with the template's bytes, so the template is checked on every body.
- Prediction bodies are written with the model-specific middle (deployment, model, role...)
  encoded once, and read with the middle recognised by its bytes.

Nothing here refuses anything: a reader returns None and a writer returns None whenever a body or
record is not on its fast path (an unknown shape, a multi-block map, a value of an unusual type,
a cut body...), and the caller uses fastavro, which decodes or refuses it as before. The unit
tests compare both paths on generated and mutated records.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

_DOUBLE = struct.Struct("<d")
_UNPACK_DOUBLE = _DOUBLE.unpack_from
_PACK_DOUBLE = _DOUBLE.pack
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_SMALL_LONGS = [bytes([(n << 1) ^ (n >> 63)]) for n in range(64)]
MAX_TEMPLATES = 4  # per deployment: shapes differing by missing values, say
MAX_DEPLOYMENTS = 1024  # bound on the template cache
MAX_MIDDLES = 64  # Prediction middles (deployment x model x role) remembered by the reader


class Miss(Exception):
    """Not on the fast path (the caller falls back to fastavro)."""


# -- primitives -------------------------------------------------------------------------------


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """(zigzag long, next position); raises Miss past the end or on an over-long varint."""
    try:
        b = buf[pos]
        if b < 0x80:
            return (b >> 1) ^ -(b & 1), pos + 1
        n, shift = b & 0x7F, 7
        while True:
            pos += 1
            b = buf[pos]
            if shift == 63 and b > 1:  # past 64 bits: fastavro decides what that means
                raise Miss
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
    except IndexError:
        raise Miss from None
    return (n >> 1) ^ -(n & 1), pos + 1


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    """(UTF-8 string, next position); raises Miss on a negative length, a cut or bad UTF-8."""
    try:
        size = buf[pos]
    except IndexError:
        raise Miss from None
    if size < 0x80:  # a length under 64: one byte, read here (most strings of a record)
        if size & 1:
            raise Miss
        pos += 1
        end = pos + (size >> 1)
    else:
        size, pos = read_long(buf, pos)
        end = pos + size
        if size < 0:
            raise Miss
    if end > len(buf):
        raise Miss
    try:
        return buf[pos:end].decode(), end
    except UnicodeDecodeError:
        raise Miss from None


def write_long(n: int) -> bytes:
    """Zigzag varint of a long; raises Miss outside the 64-bit range."""
    if 0 <= n < 64:
        return _SMALL_LONGS[n]
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise Miss
    z = (n << 1) ^ (n >> 63)
    out = []
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def write_string(s: Any) -> bytes:
    """Length-prefixed UTF-8; raises Miss for anything but a str (fastavro decides those)."""
    if s.__class__ is not str:
        raise Miss
    try:
        data = s.encode()
    except UnicodeEncodeError:
        raise Miss from None
    return write_long(len(data)) + data


def _read_string_map(buf: bytes, pos: int) -> tuple[dict[str, str], int]:
    """A map<string> written as one block (fastavro's writer); raises Miss otherwise."""
    count, pos = read_long(buf, pos)
    out: dict[str, str] = {}
    if count == 0:
        return out, pos
    if count < 0:
        raise Miss
    for _ in range(count):
        key, pos = read_string(buf, pos)
        out[key], pos = read_string(buf, pos)
    if buf[pos : pos + 1] != b"\x00":
        raise Miss
    return out, pos + 1


# -- FeatureEvent -----------------------------------------------------------------------------

# Union branches and booleans as bytes (zigzag 0, 1, 2). FeatureEvent values are
# [null, double, string]; a Prediction's prediction is [null, string, double].
_NULL, _BRANCH_1, _BRANCH_2 = b"\x00", b"\x02", b"\x04"
_FALSE, _TRUE = b"\x00", b"\x01"


class _FeatureTemplate:
    """The bytes of one feature-map shape: numeric runs as structs, strings and nulls between."""

    def __init__(self, features: Mapping[str, Any]) -> None:
        self.count = write_long(len(features))
        # steps: ("run", unpack, size, key fields) | ("str", prefix, size) | ("null", prefix, size)
        self.steps: list[tuple[Any, ...]] = []
        self.names = tuple(features)
        run: list[bytes] = []
        for name, value in features.items():
            key = write_string(name)
            if value.__class__ is float:
                run.append(key + _BRANCH_1)
                continue
            self._close(run)
            if value is None:
                prefix = key + _NULL
                self.steps.append(("null", prefix, len(prefix)))
            elif value.__class__ is str:
                prefix = key + _BRANCH_2
                self.steps.append(("str", prefix, len(prefix)))
            else:
                raise Miss
        self._close(run)

    def _close(self, run: list[bytes]) -> None:
        """A run of numeric features: one struct of (key and branch bytes, double) pairs."""
        if not run:
            return
        layout = struct.Struct("<" + "".join(f"{len(k)}sd" for k in run))
        self.steps.append(("run", layout.unpack_from, layout.size, tuple(run)))
        run.clear()

    def read(self, buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
        """The feature map at `pos` (its block count included); raises Miss on any difference."""
        if not buf.startswith(self.count, pos):
            raise Miss
        pos += len(self.count)
        if not self.steps:  # an empty map is its count (0) alone
            return {}, pos
        values: list[Any] = []  # in template order
        try:
            for step in self.steps:
                if step[0] == "run":
                    run = step[1](buf, pos)
                    if run[::2] != step[3]:
                        raise Miss
                    values.extend(run[1::2])
                    pos += step[2]
                elif not buf.startswith(step[1], pos):
                    raise Miss
                elif step[0] == "str":
                    value, pos = read_string(buf, pos + step[2])
                    values.append(value)
                else:
                    values.append(None)
                    pos += step[2]
        except struct.error:
            raise Miss from None
        if buf[pos : pos + 1] != _NULL:  # end of the map's only block
            raise Miss
        return dict(zip(self.names, values, strict=False)), pos + 1


class FeatureEventReader:
    """Reads FeatureEvent bodies through templates learned from the records fastavro decodes."""

    def __init__(self) -> None:
        self._templates: dict[str, list[_FeatureTemplate]] = {}

    def read(self, body: bytes) -> dict[str, Any] | None:
        """The record, or None when the body is not on the fast path."""
        try:
            association_id, pos = read_string(body, 0)
            deployment, pos = read_string(body, pos)
            event_time, pos = read_long(body, pos)
            for template in self._templates.get(deployment, ()):  # the newest first
                try:
                    features, end = template.read(body, pos)
                    break
                except Miss:
                    continue
            else:
                return None
            attributes, end = _read_string_map(body, end)
        except Miss:
            return None
        if end != len(body):
            return None
        return {
            "association_id": association_id,
            "deployment": deployment,
            "event_time": event_time,
            "features": features,
            "attributes": attributes,
        }

    def learn(self, record: Mapping[str, Any]) -> None:
        """Remember the feature shape of a record fastavro decoded (the next one may match)."""
        try:
            template = _FeatureTemplate(record["features"])
        except Miss:
            return
        if len(self._templates) >= MAX_DEPLOYMENTS:
            self._templates.clear()
        templates = self._templates.setdefault(record["deployment"], [])
        templates.insert(0, template)
        del templates[MAX_TEMPLATES:]


# -- Prediction -------------------------------------------------------------------------------


def middle_bytes(record: Mapping[str, Any]) -> bytes:
    """A Prediction's model-specific middle as written (deployment .. served); raises Miss."""
    return b"".join(
        (
            write_string(record["deployment"]),
            write_string(record["model_name"]),
            write_long(record["model_version"]),
            write_string(record["model_id"]),
            write_string(record["role"]),
            _TRUE if record["served"] else _FALSE,
        )
    )


def _write_int(n: Any, low: int, high: int) -> bytes:
    if n.__class__ is not int or not low <= n <= high:
        raise Miss
    return write_long(n)


class PredictionWriter:
    """Writes Prediction bodies; the model-specific middle is encoded once per model and role."""

    def __init__(self) -> None:
        self._middles: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._prob_keys: dict[tuple[str, ...], tuple[bytes, tuple[bytes, ...]]] = {}
        self._scored: tuple[Any, bytes] = (None, b"")

    def write(self, record: Mapping[str, Any]) -> bytes | None:
        """The body, or None when the record is not on the fast path."""
        try:
            return self._write(record)
        except (Miss, KeyError, AttributeError, TypeError):
            return None

    def _write(self, record: Mapping[str, Any]) -> bytes:
        served, version = record["served"], record["model_version"]
        if served.__class__ is not bool or version.__class__ is not int:
            raise Miss
        ident = (
            record["deployment"],
            record["model_name"],
            version,
            record["model_id"],
            record["role"],
            served,
        )
        middle = self._middles.get(ident)
        if middle is None:
            middle = middle_bytes(record)
            if len(self._middles) >= MAX_MIDDLES:
                self._middles.popitem(last=False)
            self._middles[ident] = middle
        prediction = record["prediction"]
        if prediction is None:
            pred = _NULL
        elif prediction.__class__ is str:
            pred = _BRANCH_1 + write_string(prediction)
        elif prediction.__class__ is float:
            pred = _BRANCH_2 + _PACK_DOUBLE(prediction)
        else:
            raise Miss
        parts = [write_string(record["association_id"]), middle, pred]
        probabilities = record["probabilities"]
        if probabilities:
            keys = tuple(probabilities)
            known = self._prob_keys.get(keys)
            if known is None:
                if len(self._prob_keys) >= MAX_MIDDLES:
                    self._prob_keys.clear()
                known = (write_long(len(keys)), tuple(write_string(k) for k in keys))
                self._prob_keys[keys] = known
            parts.append(known[0])
            for key, value in zip(known[1], probabilities.values(), strict=True):
                if value.__class__ is not float:
                    raise Miss
                parts.append(key)
                parts.append(_PACK_DOUBLE(value))
        parts.append(_NULL)  # end of the map
        flags = record["humility"]
        if flags:
            parts.append(write_long(len(flags)))
            parts.extend(write_string(f) for f in flags)
        parts.append(_NULL)  # end of the array
        overridden = record["overridden"]
        if overridden.__class__ is not bool:
            raise Miss
        parts.append(_TRUE if overridden else _FALSE)
        parts.append(_write_int(record["event_time"], _LONG_MIN, _LONG_MAX))
        scored = record["scored_time"]  # one value for a whole batch: encoded once
        if scored != self._scored[0] or scored.__class__ is not int:
            self._scored = (scored, _write_int(scored, _LONG_MIN, _LONG_MAX))
        parts.append(self._scored[1])
        parts.append(_write_int(record["input_partition"], _INT_MIN, _INT_MAX))
        parts.append(_write_int(record["input_offset"], _LONG_MIN, _LONG_MAX))
        return b"".join(parts)


class PredictionReader:
    """Reads Prediction bodies; middles already seen are recognised by their bytes."""

    def __init__(self) -> None:
        # (middle bytes, values) pairs, newest last; replaced whole on learning, so a read never
        # sees it change (threads may share one reader) and never copies it.
        self._middles: tuple[tuple[bytes, tuple[Any, ...]], ...] = ()
        # Probability maps by their keys: (unpack, size, key and end bytes, names), kept alike.
        self._layouts: tuple[tuple[Any, int, tuple[bytes, ...], tuple[str, ...]], ...] = ()

    def read(self, body: bytes) -> dict[str, Any] | None:
        """The record, or None when the body is not on the fast path."""
        try:
            record = self._read(body)
        except Miss:
            return None
        return record

    def _known_middle(self, buf: bytes, pos: int) -> tuple[Any, ...] | None:
        for middle, values in self._middles:
            if buf.startswith(middle, pos):
                return values
        return None

    def _learn_middle(self, buf: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        """(length, deployment, model name, version, model id, role, served), next position."""
        start = pos
        deployment, pos = read_string(buf, pos)
        model_name, pos = read_string(buf, pos)
        version, pos = read_long(buf, pos)
        model_id, pos = read_string(buf, pos)
        role, pos = read_string(buf, pos)
        served = buf[pos : pos + 1]
        if served not in (_TRUE, _FALSE):
            raise Miss
        pos += 1
        values = (pos - start, deployment, model_name, version, model_id, role, served == _TRUE)
        self._middles = (*self._middles[-(MAX_MIDDLES - 1) :], (buf[start:pos], values))
        return values, pos

    def _probabilities(self, buf: bytes, pos: int) -> tuple[dict[str, float], int]:
        """The probability map at ``pos``: one unpack where its keys were seen before."""
        for unpack, size, keys, names in self._layouts:
            try:
                run = unpack(buf, pos)
            except struct.error:
                continue
            if run[::2] == keys:
                return dict(zip(names, run[1::2], strict=True)), pos + size
        count, pos = read_long(buf, pos)
        probabilities: dict[str, float] = {}
        if not count:
            return probabilities, pos
        if count < 0:
            raise Miss
        for _ in range(count):
            key, pos = read_string(buf, pos)
            if pos + 8 > len(buf):
                raise Miss
            probabilities[key] = _UNPACK_DOUBLE(buf, pos)[0]
            pos += 8
        if buf[pos : pos + 1] != _NULL:
            raise Miss
        self._learn_layout(tuple(probabilities))
        return probabilities, pos + 1

    def _learn_layout(self, names: tuple[str, ...]) -> None:
        """A map of these keys, in this order, as one struct: (count and key, double)..., end."""
        prefixes = [write_string(k) for k in names]
        prefixes[0] = write_long(len(names)) + prefixes[0]
        layout = struct.Struct("<" + "".join(f"{len(k)}sd" for k in prefixes) + "1s")
        layout_keys = (*prefixes, _NULL)
        known = (layout.unpack_from, layout.size, layout_keys, names)
        self._layouts = (*self._layouts[-(MAX_MIDDLES - 1) :], known)

    def _read(self, buf: bytes) -> dict[str, Any]:
        association_id, pos = read_string(buf, 0)
        values = self._known_middle(buf, pos)
        if values is None:
            values, pos = self._learn_middle(buf, pos)
        else:
            pos += values[0]
        branch = buf[pos : pos + 1]
        pos += 1
        if branch == _NULL:
            prediction: Any = None
        elif branch == _BRANCH_1:
            prediction, pos = read_string(buf, pos)
        elif branch == _BRANCH_2:
            if pos + 8 > len(buf):
                raise Miss
            prediction = _UNPACK_DOUBLE(buf, pos)[0]
            pos += 8
        else:
            raise Miss
        probabilities, pos = self._probabilities(buf, pos)
        count, pos = read_long(buf, pos)
        humility: list[str] = []
        if count:
            if count < 0:
                raise Miss
            for _ in range(count):
                flag, pos = read_string(buf, pos)
                humility.append(flag)
            if buf[pos : pos + 1] != _NULL:
                raise Miss
            pos += 1
        overridden = buf[pos : pos + 1]
        if overridden not in (_TRUE, _FALSE):
            raise Miss
        event_time, pos = read_long(buf, pos + 1)
        scored_time, pos = read_long(buf, pos)
        partition, pos = read_long(buf, pos)
        offset, pos = read_long(buf, pos)
        if pos != len(buf) or not _INT_MIN <= partition <= _INT_MAX:
            raise Miss
        _, deployment, model_name, version, model_id, role, served = values
        return {
            "association_id": association_id,
            "deployment": deployment,
            "model_name": model_name,
            "model_version": version,
            "model_id": model_id,
            "role": role,
            "served": served,
            "prediction": prediction,
            "probabilities": probabilities,
            "humility": humility,
            "overridden": overridden == _TRUE,
            "event_time": event_time,
            "scored_time": scored_time,
            "input_partition": partition,
            "input_offset": offset,
        }
