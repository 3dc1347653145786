"""The last windows of a stream that stops are reported: closed after ``idle_close_s`` of
silence (count windows at once, time windows once the wall clock is past their end, the
lateness and the idle time), with their real counts, in a transaction of the state."""

from __future__ import annotations

import json

import pytest

from services.common import serde
from services.drift.config import DriftSettings
from services.drift.idle import IdleWatch
from services.drift.windows import Windows
from tests.drift_support import T0, content, deployment, event, model_record, numeric_baseline
from tests.fuzz_cases import drain, drift_rig

pytestmark = pytest.mark.unit

C = content("f" * 64, 1, [numeric_baseline("x")])
IDLE_S = 60


class Clock:
    """A wall clock the test moves (seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rig(clock: Clock, window_count: int = 0, window_seconds: int = 60):
    loop = drift_rig(
        [model_record(C), deployment("d", C, window_seconds=window_seconds)],
        window_count=window_count,
        idle_close_s=IDLE_S,
    )
    loop.idle = IdleWatch(IDLE_S, clock=clock)
    return loop


def _events(loop, times: list[int], first: int = 0) -> None:
    for i, t in enumerate(times, start=first):
        loop.log.append(loop.events, serde.encode("FeatureEvent", event("d", i, t, {"x": 0.1})))


def _reports(loop) -> list[dict]:
    return [
        serde.decode(v, expected="DriftReport")[1]
        for t, _k, v in loop.producer.sent
        if t == loop.namer.drift
    ]


def _stored_open(loop) -> list:
    """The open windows of deployment d in the state the loop committed."""
    return json.loads(loop.store.monitors["d"])["windows"]["open"]


def test_a_partial_count_window_is_reported_after_the_idle_time_with_its_real_count():
    clock = Clock(1_000.0)
    loop = _rig(clock, window_count=100)
    _events(loop, [T0 + i for i in range(250)])
    drain(loop)
    assert [r["event_count"] for r in _reports(loop)] == [100, 100]
    assert len(_stored_open(loop)) == 1  # 50 events wait for 50 more that never come
    clock.now += IDLE_S - 1
    loop.step([])
    assert len(_reports(loop)) == 2, "not quiet for long enough yet"
    clock.now += 1
    loop.step([])
    reports = _reports(loop)
    assert [r["event_count"] for r in reports] == [100, 100, 50]
    last = reports[-1]
    assert (last["window_start"], last["window_end"]) == (T0 + 200, T0 + 250)
    assert _stored_open(loop) == []  # the close is committed with the state (R11)
    # The stream comes back: a new window starts, nothing is counted twice.
    _events(loop, [T0 + 250 + i for i in range(100)], first=250)
    drain(loop)
    assert [r["event_count"] for r in _reports(loop)] == [100, 100, 50, 100]


def test_a_stream_that_keeps_sending_keeps_its_count_window_open():
    clock = Clock(1_000.0)
    loop = _rig(clock, window_count=100)
    for k in range(5):  # ten events every 50 s: never quiet for 60 s
        _events(loop, [T0 + 10 * k + i for i in range(10)], first=10 * k)
        drain(loop)
        clock.now += 50
    assert _reports(loop) == []
    assert len(_stored_open(loop)) == 1


def test_the_last_time_window_of_a_live_stream_closes_past_its_end_lateness_and_idle():
    start_s = 1_700_000_040  # a window of 60 s starts here (a multiple of 60)
    clock = Clock(start_s + 5.0)
    loop = _rig(clock)
    _events(loop, [start_s * 1000 + i * 100 for i in range(40)])  # 0 to 3.9 s into the window
    drain(loop)
    # The stream stops. Quiet for 60 s, but the window ends at 60 s; with the allowed
    # lateness (10 s) and the idle time it may close from 130 s on.
    clock.now = start_s + 129.0
    loop.step([])
    assert _reports(loop) == []
    clock.now = start_s + 130.0
    loop.step([])
    (report,) = _reports(loop)
    assert report["event_count"] == 40
    assert (report["window_start"], report["window_end"]) == (
        start_s * 1000,
        start_s * 1000 + 60_000,
    )


def test_a_replayed_time_window_closes_after_the_idle_time_and_a_straggler_is_late():
    clock = Clock(2_000_000_000.0)  # the replayed events are years older than the clock
    loop = _rig(clock)
    start = T0 - T0 % 60_000
    _events(loop, [start + i * 100 for i in range(300)])  # 30 s of one window
    drain(loop)
    assert _reports(loop) == []  # the watermark never reached the window's end
    clock.now += IDLE_S
    loop.step([])
    (report,) = _reports(loop)
    assert report["event_count"] == 300 and report["window_start"] == start
    # An event of that window still comes: it is late, and the window is not opened again.
    _events(loop, [start + 45_000, start + 61_000], first=300)
    drain(loop)
    clock.now += IDLE_S
    loop.step([])
    reports = _reports(loop)
    assert [(r["window_start"], r["event_count"], r["late_events"]) for r in reports] == [
        (start, 300, 0),
        (start + 60_000, 1, 1),
    ]


def test_a_restart_does_not_count_the_time_down_as_quiet():
    clock = Clock(1_000.0)
    loop = _rig(clock, window_count=100)
    _events(loop, [T0 + i for i in range(30)])
    drain(loop)
    clock.now += 10 * IDLE_S  # the process was down for ten minutes
    loop.recover()  # the state is loaded again, as at a restart (_restore)
    loop.step([])
    assert _reports(loop) == []
    clock.now += IDLE_S
    loop.step([])
    assert [r["event_count"] for r in _reports(loop)] == [30]


def test_idle_close_s_zero_never_closes_and_negative_is_refused():
    clock = Clock(1_000.0)
    loop = drift_rig([model_record(C), deployment("d", C)], window_count=100, idle_close_s=0)
    loop.idle = IdleWatch(0, clock=clock)
    _events(loop, [T0 + i for i in range(30)])
    drain(loop)
    clock.now += 10_000
    loop.step([])
    assert _reports(loop) == []
    with pytest.raises(ValueError, match="idle_close_s"):
        DriftSettings(idle_close_s=-1)


def test_windows_idle_closes_count_windows_at_once_and_time_windows_in_turn():
    count = Windows(size_ms=10, lateness_ms=2, factory=lambda seq, start, end: [], count=5)
    count.assign_events([1, 2, 3])
    assert [w.seq for w in count.idle(now_ms=0, idle_ms=0)] == [0]
    assert count.open == {}
    timed = Windows(size_ms=10, lateness_ms=2, factory=lambda seq, start, end: [])
    timed.assign_events([1, 12])
    assert timed.idle(now_ms=16, idle_ms=5) == []  # [0, 10) + 2 + 5 is 17
    assert [w.start for w in timed.idle(now_ms=26, idle_ms=5)] == [0]
    assert (timed.watermark, list(timed.open)) == (10, [10])
    assert [w.start for w in timed.idle(now_ms=27, idle_ms=5)] == [10]
    assert timed.watermark == 20
    assert timed.assign_events([15]) == [] and timed.late == 1  # its window has closed
