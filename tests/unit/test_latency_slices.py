"""The scorer benchmark's latency phase: its p99 given per 10 s slice beside the whole phase's."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.bench_scorer import p99_by_slice

pytestmark = pytest.mark.unit


def test_a_burst_shows_in_its_own_slice_only():
    quiet = np.full(1000, 4.0)
    burst = quiet.copy()
    burst[500:520] = 40.0  # 2% of one slice
    slices = p99_by_slice(np.concatenate([quiet, burst, quiet]), 30.0)
    assert slices == [4.0, 40.0, 4.0]


def test_one_slice_per_ten_seconds_and_at_least_one():
    lat = np.arange(3000, dtype=float)
    assert len(p99_by_slice(lat, 30.0)) == 3
    assert len(p99_by_slice(lat, 10.0)) == 1
    assert len(p99_by_slice(lat, 4.0)) == 1
    assert p99_by_slice(lat, 4.0) == [round(float(np.percentile(lat, 99)), 2)]


def test_fewer_latencies_than_slices_leave_no_empty_slice():
    assert p99_by_slice(np.array([5.0, 6.0]), 50.0) == [5.0, 6.0]
