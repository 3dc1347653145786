"""Avro fields read for many messages at once: a batch's bodies as one numpy byte array.

The primitives of the columnar readers (``event_columns``, ``prediction_columns``). Each reads
one field at a position per message and says, per message, whether it is on the plain path;
a message that is not is left to the per-message decoder by its reader. Positions may run past
a cut or malformed body: reads there see whatever follows (past the last body, `PAD` zeros), and
the reader refuses the message at the end, where its position must equal its body's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

MAX_LAYOUTS = 64  # layouts a reader remembers (deployments x shapes, models x roles)
MIN_BATCH = 8  # fewer messages than this go to the per-message decoder
# Zero bytes after the last body: a read that runs past a body's end by up to this much (a
# varint or string read at its widest) sees zeros there, whatever body comes last.
PAD = 80


def joined(values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes of every value and ``PAD`` zeros, start of each value, length of each value)."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    starts = np.zeros(len(values), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.frombuffer(b"".join(values) + bytes(PAD), dtype=np.uint8), starts, lengths


def gather(buf: np.ndarray, pos: np.ndarray, width: int | np.ndarray) -> np.ndarray:
    """``width`` bytes from each position, or the bytes at these offsets from it.

    Rows are copied out of a strided view of the buffer (an index per byte cost 1.5-8x as much).
    A position too near the buffer's end for the span reads the buffer's last span instead:
    only a row already past its own body's end and the ``PAD`` reads there, and its reader
    refuses it.
    """
    offsets = None if isinstance(width, int) else width
    span = width if offsets is None else int(offsets.max()) + 1 if offsets.size else 0
    if span == 0:
        return np.zeros((pos.size, 0), dtype=buf.dtype)
    if buf.size < span:
        buf = np.concatenate([buf, np.full(span - buf.size, buf[-1])])
    windows = as_strided(buf, (buf.size - span + 1, span), (buf.itemsize,) * 2, writeable=False)
    rows = windows[np.minimum(pos, buf.size - span)]
    return rows if offsets is None else rows[:, offsets]


def byte(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The byte at each position (past the buffer's end, its last byte)."""
    return buf[np.minimum(pos, buf.size - 1)]


def equal(buf: np.ndarray, pos: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Whether the bytes at each position are ``expected``."""
    return (gather(buf, pos, expected.size) == expected).all(axis=1)


def short_ascii(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(taken, length, bytes) of the strings at ``pos``: under 64 bytes, ASCII, no NUL.

    The bytes of a string not taken are zeros, so ``texts`` can read every row.
    """
    head = byte(buf, pos).astype(np.int64)
    length = head >> 1
    ok = (head < 0x80) & ((head & 1) == 0)
    width = int(length[ok].max()) if ok.any() else 0
    chars = gather(buf, pos + 1, width)
    inside = np.arange(width) < length[:, None]
    ok &= ~(inside & ((chars >= 0x80) | (chars == 0))).any(axis=1)
    return ok, length, np.where(inside & ok[:, None], chars, 0).astype(np.uint8)


def texts(chars: np.ndarray) -> np.ndarray:
    """Rows of ASCII bytes (NUL-padded) as an object array of str."""
    if chars.shape[1] == 0:
        return np.full(chars.shape[0], "", dtype=object)
    fixed = np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel()
    out = np.empty(fixed.size, dtype=object)
    out[:] = [b.decode() for b in fixed.tolist()]  # bytes without the NUL padding (~35% faster
    return out  # than going through a numpy unicode array)


def doubles(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The little-endian doubles at each position."""
    return np.ascontiguousarray(gather(buf, pos, 8)).view("<f8").ravel()


def longs(
    buf: np.ndarray, pos: np.ndarray, most: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(taken, value, bytes used) of the zigzag varints at ``pos``, of at most ``most`` bytes.

    Nine bytes hold 63 bits, so every value taken is a long as fastavro reads it.
    """
    raw = gather(buf, pos, most).astype(np.uint64)
    last = raw < 0x80
    ok = last.any(axis=1)
    used = last.argmax(axis=1) + 1
    inside = np.arange(most) < used[:, None]
    shifts = (7 * np.arange(most)).astype(np.uint64)
    zigzag = (((raw & np.uint64(0x7F)) << shifts) * inside).sum(axis=1, dtype=np.uint64)
    value = (zigzag >> np.uint64(1)).astype(np.int64) ^ -(zigzag & np.uint64(1)).astype(np.int64)
    return ok, value, used


@dataclass(frozen=True)
class DoublesTemplate:
    """Fixed bytes with doubles between them (map keys and their values), read with two gathers."""

    fixed: np.ndarray  # offsets of the fixed bytes
    expected: np.ndarray  # those bytes
    slots: np.ndarray  # offsets of the doubles' bytes, 8 each
    size: int  # bytes in all

    @classmethod
    def of(cls, pieces: Sequence[bytes | None]) -> DoublesTemplate:
        """The template of these pieces in order: fixed bytes, or ``None`` for a double."""
        fixed: list[int] = []
        slots: list[int] = []
        expected = bytearray()
        size = 0
        for piece in pieces:
            if piece is None:
                slots += range(size, size + 8)
                size += 8
            else:
                fixed += range(size, size + len(piece))
                expected += piece
                size += len(piece)
        return cls(
            np.array(fixed, dtype=np.int64),
            np.frombuffer(bytes(expected), dtype=np.uint8),
            np.array(slots, dtype=np.int64),
            size,
        )


def template_doubles(
    buf: np.ndarray, pos: np.ndarray, template: DoublesTemplate
) -> tuple[np.ndarray, np.ndarray]:
    """(taken, doubles by row and slot) of the template at each position: taken when its fixed
    bytes are there and its doubles are finite."""
    ok = (gather(buf, pos, template.fixed) == template.expected).all(axis=1)
    if not template.slots.size:
        return ok, np.zeros((pos.size, 0))
    values = np.ascontiguousarray(gather(buf, pos, template.slots)).view("<f8")
    return ok & np.isfinite(values).all(axis=1), values
