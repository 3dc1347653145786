"""The same-stream benchmark: its verdict (drift keeps up at every rate the scorers keep up at)
and its CPU accounting."""

from __future__ import annotations

import os
import time

import pytest

from loadtest.benchmarks_md import _same_stream
from loadtest.drift_same_stream import CATCH_UP_S, cpu_seconds, kept_up

pytestmark = pytest.mark.unit


def run(rate: int, scorers: float, drift_behind: float) -> dict:
    return {
        "rate": rate,
        "scorers_done_after_feed_s": scorers,
        "drift_after_scorers_s": drift_behind,
    }


def test_drift_keeps_up_when_it_trails_only_where_the_scorers_fall_behind():
    runs = [run(10_000, 0.1, 0.0), run(20_000, 0.2, CATCH_UP_S), run(30_000, 1.3, 2.0)]
    assert kept_up(runs) is True


def test_drift_behind_at_a_rate_the_scorers_keep_up_at_is_a_miss():
    runs = [run(10_000, 0.1, 0.0), run(20_000, 0.1, CATCH_UP_S + 0.01)]
    assert kept_up(runs) is False


def test_no_rate_the_scorers_kept_up_at_means_not_measured():
    assert kept_up([run(30_000, CATCH_UP_S + 0.5, 0.0)]) is None
    assert kept_up([]) is None


def test_cpu_seconds_counts_the_process_own_work():
    before = cpu_seconds(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.3:  # busy, not asleep
        pass
    used = cpu_seconds(os.getpid()) - before
    assert 0.2 <= used <= 2.0, used
    idle = cpu_seconds(os.getpid())
    time.sleep(0.3)
    assert cpu_seconds(os.getpid()) - idle < 0.1  # asleep: no CPU counted


def test_the_table_names_a_redis_rewrite_during_a_rate_and_only_then():
    quiet = run(20_000, 0.1, 0.1) | {"drift_done_after_feed_s": 0.2, "redis_rewriting_s": 0.0}
    busy = run(30_000, 0.1, 1.0) | {"drift_done_after_feed_s": 1.1, "redis_rewriting_s": 4.6}
    older = run(10_000, 0.1, 0.1) | {"drift_done_after_feed_s": 0.2}  # results before the field
    text = _same_stream({"same_stream_runs": [older, quiet, busy]})
    assert text.count("rewriting") == 1
    assert text.endswith(
        "30,000/s: scorers 0.1 s, drift 1.1 s (CPU per event: scorers ? us, drift ? us; "
        "Redis rewriting its append-only file ~4.6 s)"
    )
