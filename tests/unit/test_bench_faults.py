"""The fault benchmark's arithmetic (R2, R4, R8 figures) from hand-made samples, its verdicts,
and how BENCHMARKS.md renders them."""

from __future__ import annotations

import doctest

import pytest

from loadtest import fault_timing, fault_verdicts
from loadtest.benchmarks_md import checks_lines
from loadtest.fault_timing import (
    back_under,
    delivery_counts,
    duplicated,
    first_after,
    first_rise,
    first_seen,
    peak,
    r2_bound_s,
    spread,
    swap_latencies,
    within,
)

pytestmark = pytest.mark.unit


def test_docstring_examples() -> None:
    result = doctest.testmod(fault_timing)
    assert result.attempted > 0 and result.failed == 0


# R2: committed totals sampled across a kill at t=10.


def test_recovery_is_the_first_commit_above_what_the_dead_scorer_left() -> None:
    samples = [(9.8, 1200), (10.05, 1400), (10.3, 1400), (12.0, 1400), (14.1, 1600)]
    # 1400 landed just after the kill (the dead process's last transaction): the baseline.
    assert first_rise(samples, after=10.0) == pytest.approx(4.1)


def test_no_commit_after_the_kill_is_no_recovery() -> None:
    assert first_rise([(9.0, 5), (10.5, 7), (11.0, 7)], after=10.0) is None
    assert first_rise([(9.0, 5)], after=10.0) is None


def test_samples_out_of_order_are_read_in_time_order() -> None:
    assert first_rise([(12.0, 9), (10.1, 3), (11.0, 3)], after=10.0) == pytest.approx(2.0)


def test_predictions_flow_again_at_the_first_append_after_the_kill() -> None:
    appended = [9.0, 9.99, 14.25, 13.5, 20.0]
    assert first_after(appended, 10.0) == pytest.approx(3.5)
    assert first_after([9.0, 10.0], 10.0) is None


def test_r2_bound_comes_from_the_clients_config() -> None:
    consumer = {"session.timeout.ms": 10_000}
    assert r2_bound_s(consumer, {}) == 75.0  # librdkafka's 60 s transaction timeout
    assert r2_bound_s(consumer, {"transaction.timeout.ms": 20_000}) == 35.0


# R4: lag sampled around membership changes at t=100 (next change at t=120).


def test_lag_back_under_after_a_spike() -> None:
    lag = [(99.0, 200), (100.2, 300), (101.0, 2600), (102.0, 1800), (103.4, 700), (110.0, 150)]
    assert back_under(lag, 100.0, 120.0, 1000) == pytest.approx(3.4)
    assert peak(lag, 100.0, 120.0) == 2600


def test_lag_that_never_reaches_the_limit_is_under_from_the_first_sample() -> None:
    lag = [(100.1, 300), (101.0, 385), (119.0, 100)]
    assert back_under(lag, 100.0, 120.0, 1000) == pytest.approx(0.1)


def test_a_second_spike_before_the_next_change_restarts_the_clock() -> None:
    lag = [(100.5, 3000), (101.0, 500), (105.0, 4000), (108.0, 900), (119.0, 10)]
    assert back_under(lag, 100.0, 120.0, 1000) == pytest.approx(8.0)


def test_lag_still_high_at_the_next_change_is_followed_up_to_the_horizon() -> None:
    lag = [(101.0, 5000), (119.5, 3000), (121.0, 2500), (135.0, 800), (140.0, 50)]
    assert back_under(lag, 100.0, 120.0, 1000, horizon=60.0) == pytest.approx(35.0)
    assert back_under(lag, 100.0, 120.0, 1000, horizon=30.0) is None


def test_lag_never_back_under_is_none() -> None:
    lag = [(101.0, 5000), (119.0, 6000), (150.0, 7000), (170.0, 9000)]
    assert back_under(lag, 100.0, 120.0, 1000) is None
    assert back_under([], 100.0, 120.0, 1000) is None
    assert peak([], 100.0, 120.0) is None


# R8 and the correctness counts.


def test_swap_is_deployment_append_to_the_first_prediction_of_that_version() -> None:
    predictions = [(50.30, 1), (51.12, 3), (51.05, 3), (52.9, 5), (51.2, 1)]
    seen = first_seen(predictions)
    assert seen == {1: 50.30, 3: 51.05, 5: 52.9}
    swaps = swap_latencies({3: 51.0, 5: 52.0, 7: 53.0}, seen)
    assert swaps == {3: pytest.approx(0.05), 5: pytest.approx(0.9), 7: None}
    assert spread(swaps.values()) == {"p50": 0.475, "max": 0.9, "measured": 2, "of": 3}
    assert not within(swaps.values(), 1.0)  # version 7 never served


def test_within_needs_every_value_measured_and_under_the_bound() -> None:
    assert within([0.2, 1.0], 1.0)
    assert not within([0.2, 1.01], 1.0)
    assert not within([], 1.0)


def test_delivery_counts_lost_duplicates_and_unexpected() -> None:
    expected = {"a", "b", "c", "d"}
    assert delivery_counts(expected, ["a", "b", "b", "b", "c", "x"]) == {
        "lost": 1,
        "duplicates": 2,
        "unexpected": 1,
    }
    assert duplicated(["a", "b", "b", "b", "c", "x", "c"]) == {"b", "c"}
    assert delivery_counts(expected, list(expected)) == {
        "lost": 0,
        "duplicates": 0,
        "unexpected": 0,
    }


# Verdicts and rendering.


def r2_result(**changes: object) -> dict:
    base = {
        "events": 6000,
        "kills": 3,
        "kill_to_first_commit_s": [5.0, 4.0, 3.6],
        "kill_to_predictions_s": [4.9, 3.9, 3.5],
        "lost": 0,
        "duplicates": 0,
        "unexpected": 0,
        "session_timeout_s": 10.0,
        "transaction_timeout_s": 60.0,
        "bound_s": 75.0,
    }
    return {**base, **changes}


def test_r2_verdicts() -> None:
    assert all(c["met"] for c in fault_verdicts.r2_checks(r2_result()))
    slow = fault_verdicts.r2_checks(r2_result(kill_to_first_commit_s=[5.0, 80.0, None]))
    assert [c["met"] for c in slow] == [False, True, True]
    dup = fault_verdicts.r2_checks(r2_result(duplicates=1))
    assert [c["met"] for c in dup] == [True, True, False]
    assert "<= 75 s (session 10 s + transaction 60 s + 5 s)" == slow[0]["target"]


def r4_result(back: list[float | None], codes: tuple[int, ...] = (0, 0), dup: int = 0) -> dict:
    return {
        "events": 100,
        "rate_per_s": 2000,
        "change_every_s": 20.0,
        "lag_limit": 1000,
        "horizon_s": 60.0,
        "changes": [{"change": "stop", "back_under_s": b, "peak_lag": 2000} for b in back],
        "bounces_exit_code_and_s": [[c, 0.2] for c in codes],
        "lost": 0,
        "duplicates": dup,
        "unexpected": 0,
    }


def test_r4_verdicts() -> None:
    assert [c["met"] for c in fault_verdicts.r4_checks(r4_result([2.3, 7.4]))] == [True, True]
    assert [c["met"] for c in fault_verdicts.r4_checks(r4_result([2.3, None]))] == [False, True]
    assert [c["met"] for c in fault_verdicts.r4_checks(r4_result([61.0]))] == [False, True]
    # A bounce that was not clean cannot show "clean bounces give 0 duplicates".
    unclean = fault_verdicts.r4_checks(r4_result([1.0], codes=(0, -9)))
    assert [c["met"] for c in unclean] == [True, False]
    assert not fault_verdicts.r4_checks(r4_result([1.0], dup=3))[1]["met"]


def test_r8_verdicts() -> None:
    swaps = {3: 0.05, 5: 0.2}
    result = {
        "swap_s": swaps,
        "swap_s_summary": spread(swaps.values()),
        "version_not_deployed": 0,
        "from_unapproved": 0,
        "predictions": 10,
        "events": 10,
        "lost": 0,
        "duplicates": 0,
        "unexpected": 0,
    }
    assert all(c["met"] for c in fault_verdicts.r8_checks(result))
    late = {**result, "swap_s": {3: 0.05, 5: 1.2}}
    assert [c["met"] for c in fault_verdicts.r8_checks(late)] == [False, True, True]
    leaked = {**result, "from_unapproved": 1}
    assert [c["met"] for c in fault_verdicts.r8_checks(leaked)] == [True, False, True]


def test_benchmarks_md_renders_each_check_with_its_verdict_then_the_details() -> None:
    data = {"checks": fault_verdicts.r2_checks(r2_result(duplicates=2)), "r2": r2_result()}
    lines = checks_lines(data)
    assert lines[0] == "| id | figure | target | measured | verdict |"
    assert lines[2].startswith("| R2 | kill -9 to the restarted scorer's first committed")
    assert lines[2].endswith("| 5 s, 4 s, 3.6 s | met |")
    assert lines[4].endswith("| **missed** |")
    assert "| r2 | bound_s | 75.0 |" in lines
    assert "| r2 | kill_to_first_commit_s | 5.0, 4.0, 3.6 |" in lines
    nested = checks_lines({"checks": [], "r4": {"bounces": [[0, 0.1]], "dups": []}})
    assert nested[-2:] == ["| r4 | bounces | [[0, 0.1]] |", "| r4 | dups | [] |"]
    never = fault_verdicts.r2_checks(r2_result(kill_to_predictions_s=[2.5, None, 3.0]))
    assert never[1]["measured"] == "2.5 s, never, 3 s" and not never[1]["met"]
