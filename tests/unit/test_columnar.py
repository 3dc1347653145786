"""The columnar primitives read what a per-row slice reads, up to the pad after the last body."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.columnar import PAD, gather, joined

pytestmark = pytest.mark.unit


def test_gather_reads_each_rows_bytes_into_the_pad_and_survives_positions_past_it():
    rng = np.random.default_rng(5)
    bodies = [bytes(rng.integers(1, 256, rng.integers(0, 40)).astype(np.uint8)) for _ in range(50)]
    buf, starts, lengths = joined(bodies)
    assert buf.size == sum(map(len, bodies)) + PAD and not buf[-PAD:].any()
    data = buf.tobytes()
    for width in (1, 8, 63):
        pos = np.concatenate([starts, starts + lengths, [len(data) - PAD]])  # ends read the pad
        want = np.array([list(data[p : p + width]) for p in pos], dtype=np.uint8)
        assert (gather(buf, pos, width) == want).all()
    offsets = np.array([0, 2, 3, 9])
    want = np.array([[data[p + o] for o in offsets] for p in starts], dtype=np.uint8)
    assert (gather(buf, starts, offsets) == want).all()
    beyond = gather(buf, np.array([len(data) - 3, 10**9]), 16)  # only refused rows read here
    assert beyond.shape == (2, 16)


def test_gather_on_a_buffer_shorter_than_the_span():
    buf = np.frombuffer(b"ab", dtype=np.uint8)
    got = gather(buf, np.array([0, 1]), 4)
    assert got.shape == (2, 4) and bytes(got[0][:2]) == b"ab"
    assert gather(buf, np.array([0]), np.array([], dtype=np.int64)).shape == (1, 0)
