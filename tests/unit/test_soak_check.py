"""The soak's checker (R17): loss and duplicate accounting, growth, recovery, metric series."""

from __future__ import annotations

import doctest

import pytest

from loadtest import soak_check, soak_plan, soak_report
from loadtest.soak_check import Check, count_delivery, duplicate_bound, growth

pytestmark = pytest.mark.unit


def test_doctests() -> None:
    for module in (soak_check, soak_plan, soak_report):
        assert doctest.testmod(module).failed == 0, module.__name__


# -- loss and duplicates ---------------------------------------------------------------------


def test_an_acknowledged_event_without_a_champion_row_is_lost() -> None:
    d = count_delivery([True, True, True], [1, 0, 1])
    assert (d.acknowledged, d.answered, d.lost, d.duplicates) == (3, 2, 1, 0)
    assert d.lost_examples == (1,)


def test_an_unacknowledged_event_is_neither_lost_nor_counted() -> None:
    d = count_delivery([True, False, True], [1, 0, 1])
    assert (d.acknowledged, d.answered, d.lost) == (2, 2, 0)


def test_rows_beyond_the_first_are_duplicates() -> None:
    d = count_delivery([True, True, True, True], [1, 3, 2, 1])
    assert (d.lost, d.duplicates) == (0, 3)


def test_events_past_the_end_of_the_rows_read_are_lost() -> None:
    """The watch saw predictions up to event 1 only: events 2 and 3 have none."""
    d = count_delivery([True] * 4, [1, 1])
    assert (d.lost, d.lost_examples) == (2, (2, 3))


def test_duplicates_of_an_unacknowledged_event_are_not_counted() -> None:
    assert count_delivery([False, True], [5, 1]).duplicates == 0


def test_duplicate_bound_is_one_batch_per_scorer_kill_or_broker_pause() -> None:
    assert duplicate_bound(2, 1, 1000) == 3000
    assert duplicate_bound(0, 0, 1000) == 0


@pytest.mark.parametrize(
    ("acked", "rows", "bound", "passed"),
    [
        ([True] * 3, [1, 1, 1], 0, [True, True]),
        ([True] * 3, [1, 0, 1], 0, [False, True]),
        ([True] * 3, [2, 2, 1], 1, [True, False]),
        ([True] * 3, [2, 2, 1], 2, [True, True]),
        ([False] * 3, [0, 0, 0], 0, [False, True]),  # nothing acknowledged proves nothing
    ],
)
def test_delivery_checks(acked, rows, bound, passed) -> None:
    checks = soak_check.check_delivery(count_delivery(acked, rows), bound)
    assert [c.passed for c in checks] == passed


# -- growth ----------------------------------------------------------------------------------


def test_growth_compares_the_20_percent_after_warmup_with_the_last_20_percent() -> None:
    # warm-up to t=100, end at 200: early window [100, 120), late window [180, 200].
    samples = [(float(t), 50.0) for t in range(0, 100)]  # warm-up: ignored however high
    samples += [(float(t), 100.0) for t in range(100, 120)]
    samples += [(float(t), 500.0) for t in range(120, 180)]  # the middle: ignored
    samples += [(float(t), 108.0) for t in range(180, 201)]
    g = growth(samples, 100.0, 200.0)
    assert (g.baseline, g.final) == (100.0, 108.0)
    assert g.ratio == pytest.approx(1.08)


def test_growth_uses_medians_so_one_spike_does_not_fail_a_run() -> None:
    samples = [(float(t), 100.0) for t in range(0, 100)]
    samples[95] = (95.0, 900.0)  # a spike in the last 20%
    assert growth(samples, 0.0, 99.0).ratio == 1.0


def test_open_files_may_grow_by_the_slack_but_not_beyond() -> None:
    few_more = [(float(t), 26.0 + 5 * (t >= 50)) for t in range(100)]  # +19%, 5 more
    leak = [(float(t), 26.0 + t // 5) for t in range(100)]  # one more every 5 s: +16
    assert soak_check.check_growth({"drift": few_more}, 0.0, 99.0, "fds", slack=8).passed
    assert not soak_check.check_growth({"drift": few_more}, 0.0, 99.0, "fds").passed
    assert not soak_check.check_growth({"drift": leak}, 0.0, 99.0, "fds", slack=8).passed


def test_growth_without_samples_in_a_window_has_no_baseline() -> None:
    g = growth([(5.0, 1.0)], 10.0, 100.0)
    assert (g.baseline, g.ratio) == (0.0, 1.0)


def test_check_growth_fails_at_ten_percent_and_names_the_service() -> None:
    flat = [(float(t), 100.0) for t in range(100)]
    leak = [(float(t), 100.0 + t * 0.2) for t in range(100)]  # 104 early, ~118 late: +13%
    check = soak_check.check_growth({"scorer-1": flat, "drift": leak}, 0.0, 99.0, "RSS")
    assert not check.passed
    assert "drift" in check.detail.split("failing:")[1]
    assert "scorer-1" not in check.detail.split("failing:")[1]
    assert soak_check.check_growth({"scorer-1": flat}, 0.0, 99.0, "RSS").passed


def test_check_growth_fails_a_series_with_no_samples_after_warmup() -> None:
    check = soak_check.check_growth({"drift": [(1.0, 10.0)]}, 50.0, 100.0, "RSS")
    assert not check.passed and "no samples" in check.detail


# -- recovery and metric series --------------------------------------------------------------


def test_recovery_fails_for_a_slow_or_unrecovered_fault_and_names_it() -> None:
    ok = {"kind": "kill:drift", "at_s": 70.0, "recovery_s": 12.0}
    slow = {"kind": "pause_broker", "at_s": 100.0, "recovery_s": 61.0}
    never = {"kind": "restart_redis", "at_s": 130.0, "recovery_s": None}
    assert soak_check.check_recovery([ok]).passed
    check = soak_check.check_recovery([ok, slow, never])
    assert not check.passed
    assert "pause_broker@100s: 61.0 s" in check.detail
    assert "restart_redis@130s: never" in check.detail
    assert "kill:drift" not in check.detail.split("too slow:")[1]


def test_skipped_faults_are_named_but_not_failed() -> None:
    ran = {"kind": "kill:drift", "at_s": 70.0, "recovery_s": 12.0}
    skipped = {"kind": "hot_swap", "at_s": 300.0, "recovery_s": None, "skipped": True}
    check = soak_check.check_recovery([ran, skipped])
    assert check.passed and "skipped (run behind schedule): hot_swap" in check.detail
    assert not soak_check.check_recovery([skipped]).passed  # nothing ran: nothing proven


def test_recovery_with_no_faults_proves_nothing() -> None:
    assert not soak_check.check_recovery([]).passed


def test_metric_series_bounded_within_slack_and_a_quarter() -> None:
    assert soak_check.check_series({"scorer-1": 100}, {"scorer-1": 150}).passed
    assert not soak_check.check_series({"scorer-1": 100}, {"scorer-1": 151}).passed
    assert soak_check.check_series({"drift": 400}, {"drift": 500}).passed
    assert not soak_check.check_series({"drift": 400}, {"drift": 501}).passed
    assert not soak_check.check_series({"drift": 400}, {}).passed


def test_summary_names_every_failed_check() -> None:
    lines = soak_check.summary_lines(
        [Check("a", True, "fine"), Check("b", False, "bad"), Check("c", False, "worse")]
    )
    assert lines[-1] == "soak: FAIL (b; c)"
    assert soak_check.summary_lines([Check("a", True, "")])[-1] == "soak: PASS"


# -- the plan and the report's series ---------------------------------------------------------


def test_schedule_spreads_faults_between_warmup_and_85_percent() -> None:
    faults = soak_plan.schedule(1800.0, soak_plan.warmup_for(1800.0))
    assert faults[0].at_s == 180.0
    assert faults[-1].at_s <= 0.85 * 1800
    gaps = {round(b.at_s - a.at_s, 6) for a, b in zip(faults, faults[1:], strict=False)}
    assert gaps == {60.0}
    kinds = {f.kind for f in faults}
    assert kinds == set(soak_plan.KINDS)  # every kind at least once in a long run


def test_a_five_minute_run_has_every_kind_of_fault_once() -> None:
    faults = soak_plan.schedule(300.0, soak_plan.warmup_for(300.0))
    assert sorted(f.kind for f in faults) == sorted(soak_plan.KINDS)


def test_a_run_too_short_for_faults_has_none() -> None:
    assert soak_plan.schedule(60.0, 60.0) == []


@pytest.mark.parametrize("text", ["0", "-5m", "abc"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        soak_plan.parse_duration(text)


def test_evaluate_reads_rss_fds_and_redis_from_the_samples() -> None:
    samples = [
        {"t": float(t), "pid": {"scorer-1": 9}, "rss_mb": {"scorer-1": 100.0},
         "fds": {"scorer-1": 40}, "redis_mb": 2.0 + (t >= 80)}
        for t in range(100)
    ]  # fmt: skip
    checks = soak_report.evaluate(
        samples, [{"kind": "hot_swap", "at_s": 30.0, "recovery_s": 0.4}],
        count_delivery([True], [1]), 0, 0.0, 99.0, {"scorer-1": 90}, {"scorer-1": 91},
    )  # fmt: skip
    by_name = {c.name: c.passed for c in checks}
    assert by_name["RSS growth within each process < 10% after settling"]
    assert by_name["open files growth < 10% (or <= 8 more) after warm-up"]
    assert not by_name["Redis used_memory (away from faults) growth < 10% after warm-up"]  # 2->3
    assert [c.passed for c in checks].count(False) == 1


# -- RSS within each process ------------------------------------------------------------------


def test_a_restart_that_catches_up_at_a_higher_flat_level_is_not_growth() -> None:
    # The first process sits at 140 MiB; killed at 120 s, its successor catches up a backlog,
    # keeps 157 MiB and stays there: +12% across the restart, flat within each process.
    samples = [(float(t), 140.0, 1) for t in range(0, 120, 2)]
    samples += [(float(t), 157.0, 2) for t in range(122, 300, 2)]
    check = soak_check.check_process_growth({"drift": samples}, 10.0, 300.0, "RSS")
    assert check.passed, check.detail
    assert (
        soak_check.check_growth(
            {"drift": [(t, v) for t, v, _ in samples]}, 10.0, 300.0, "RSS"
        ).passed
        is False
    )  # the across-restart comparison this check replaces would fail


def test_growth_within_one_process_fails_and_names_it() -> None:
    samples = [(float(t), 100.0, 1) for t in range(0, 100, 2)]
    samples += [(float(t), 100.0 + (t - 100) * 0.2, 7) for t in range(100, 400, 2)]
    check = soak_check.check_process_growth({"drift": samples}, 10.0, 400.0, "RSS")
    assert not check.passed
    assert "drift" in check.detail.split("failing:")[1] and "pid 7" in check.detail


def test_a_process_judged_from_its_settling_not_its_start() -> None:
    # The successor climbs for its first 60 s (catching up), then is flat: not growth.
    climb = [(float(t), 100.0 + min(t - 100, 60) * 0.5, 2) for t in range(100, 400, 2)]
    assert soak_check.check_process_growth({"drift": climb}, 10.0, 400.0, "RSS").passed
    assert [pid for pid, _, _ in soak_check.process_growth(climb, 10.0, 400.0)] == [2]


def test_a_service_with_no_process_long_enough_to_judge_fails() -> None:
    short = [(float(t), 100.0, t // 50) for t in range(0, 300, 2)]  # a new pid every 50 s
    check = soak_check.check_process_growth({"alerting": short}, 10.0, 300.0, "RSS")
    assert not check.passed and "no process lived" in check.detail


def test_process_series_pairs_each_value_with_the_pid_sampled_with_it() -> None:
    samples = [
        {"t": 1.0, "pid": {"drift": 5}, "rss_mb": {"drift": 80.0, "gone": 3.0}},
        {"t": 2.0, "pid": {"drift": 6}, "rss_mb": {"drift": 81.0}},
    ]
    assert soak_report.process_series(samples, "rss_mb") == {
        "drift": [(1.0, 80.0, 5), (2.0, 81.0, 6)]
    }


def test_a_soak_of_chosen_faults_cycles_only_those():
    kinds = soak_plan.parse_kinds("pause_broker, kill:drift")
    assert kinds == ("pause_broker", "kill:drift")
    planned = soak_plan.schedule(480.0, 96.0, kinds)
    assert [f.kind for f in planned] == ["pause_broker", "kill:drift"] * (len(planned) // 2) + (
        ["pause_broker"] if len(planned) % 2 else []
    )
    assert len(planned) == 5  # one a minute between warm-up and 85% of the run
    with pytest.raises(ValueError, match="unknown fault kill:everything"):
        soak_plan.parse_kinds("kill:everything")


def test_redis_is_judged_away_from_faults():
    # A fault at 20 s stalls drift: Redis empties (join entries expire), refills on recovery.
    redis = [(float(t), 1.5 if 20 <= t < 40 else 4.0) for t in range(0, 200, 2)]
    faults = [{"kind": "pause_broker", "at_s": 20.0, "end_s": 30.0, "recovery_s": 8.0}]
    kept = soak_check.quiet(redis, faults)
    assert all(not 20 <= t <= 48 for t, _ in kept) and len(kept) == len(redis) - 15
    assert soak_check.check_growth({"redis": kept}, 0.0, 199.0, "Redis").passed
    assert not soak_check.check_growth({"redis": redis}, 10.0, 199.0, "Redis").passed
    never = [{"kind": "pause_broker", "at_s": 20.0, "end_s": 30.0, "recovery_s": None}]
    # never recovered: the recovery limit (60 s) stands in for its recovery time
    assert [t for t, _ in soak_check.quiet(redis, never) if 18 <= t <= 102] == [18.0, 102.0]
