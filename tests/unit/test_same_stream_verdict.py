"""The same-stream benchmark's verdict: drift keeps up at every rate the scorers keep up at."""

from __future__ import annotations

import pytest

from loadtest.drift_same_stream import CATCH_UP_S, kept_up

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
