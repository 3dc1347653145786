"""Hostile variants of valid Avro records for property-based tests of control-plane consumers.

`hostile_record` keeps a record well formed for its schema but puts hostile values in one to
three of its leaves (NaN, Infinity, extreme integers, huge or odd strings, empty collections),
so it passes the decoder and reaches the handler; `mutated_bytes` damages the encoded bytes
(bit flips, cuts, appended bytes), which the decoder must refuse or the handler survive.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from services.common import serde

Path = tuple[Any, ...]

HOSTILE_FLOATS = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, -0.0, 5e-324]
HOSTILE_INTS = [0, -1, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63)]
HOSTILE_STRINGS = ["", "x" * 100_000, "日本\u202e", "../../etc/passwd", "\x00", "a b\nc", "NaN"]
HOSTILE_BYTES = [b"", b"\x00" * 10_000, b"\xc3\x01"]


def leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every path to a leaf (a scalar, or an empty or None collection) of a decoded record."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value[:3]):  # a few items of long lists are enough
            yield from leaves(v, (*path, i))
    else:
        yield path


def _get(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(value: Any, path: Path, new: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new


def hostile_like(value: Any) -> st.SearchStrategy[Any]:
    """Hostile values of the same kind as `value`."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, float):
        return st.sampled_from(HOSTILE_FLOATS)
    if isinstance(value, int):
        return st.sampled_from(HOSTILE_INTS)
    if isinstance(value, str):
        return st.sampled_from(HOSTILE_STRINGS)
    if isinstance(value, bytes):
        return st.sampled_from(HOSTILE_BYTES)
    if value is None:
        return st.sampled_from([None, "", 0, 0.0, float("nan")])  # whichever the union allows
    return st.sampled_from([[], {}])


@st.composite
def hostile_values(draw: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` with hostile values in one to three of its leaves."""
    paths = list(leaves(record))
    picked = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True))
    out = copy.deepcopy(record)
    for path in picked:
        if path:
            _set(out, path, draw(hostile_like(_get(record, path))))
    return out


def encoded(name: str, record: dict[str, Any]) -> bytes:
    """`record` encoded, or the example rejected when the schema cannot carry its values."""
    try:
        return serde.encode(name, record)
    except Exception:  # not a message anyone can send
        assume(False)
        raise


@st.composite
def hostile_record(draw: Any, name: str, record: dict[str, Any]) -> bytes:
    """`record` (of schema `name`) with hostile values in some leaves, encoded."""
    out = draw(hostile_values(record))
    try:
        return serde.encode(name, out)
    except Exception:  # the schema cannot carry that value: not a message anyone can send
        assume(False)
        raise


@st.composite
def mutated_bytes(draw: Any, valid: bytes) -> bytes:
    """`valid` with bits flipped, cut short, or with bytes appended or inserted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))
    what = draw(st.sampled_from(["flips", "cut", "append", "insert", "varint"]))
    if what == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif what == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    elif what == "insert":
        i = draw(st.integers(10, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=12))
    elif what == "varint":  # a long varint (a huge time or length) spliced in after the header
        i = draw(st.integers(10, len(data)))
        data[i:i] = b"\xff" * draw(st.integers(1, 12)) + b"\x01"
    return bytes(data)
