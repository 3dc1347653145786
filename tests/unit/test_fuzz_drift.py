"""Hostile input through the drift service's real decode-and-apply path (R19, issue 27).

The loop is the service's own (``DriftLoop.step``: per-message decoder, columnar readers, time
bounds, monitors, join, isolation, recovery) over in-memory stand-ins for the broker and Redis
(``tests/fuzz_cases.py``). Every case must be handled or dead-lettered by design: the safety
net for unexpected exceptions (isolation) must not be what catches it, so the tests also check
that no unexpected error was counted.
"""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common import serde
from services.common.errors import ConfigError, PoisonMessage, Reason
from services.common.json_input import EARLIEST_MS
from services.common.settings import load_settings
from services.drift import isolation, time_bounds
from services.drift.config import DriftSettings
from services.drift.monitor import DeploymentMonitor
from services.drift.time_bounds import TimeBounds
from tests.drift_support import (
    T0,
    actual,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)
from tests.fuzz_cases import (
    FAR_FUTURE_MS,
    HOSTILE_ACTUALS,
    HOSTILE_EVENTS,
    drain,
    drift_rig,
    far_future_actual,
    far_future_event,
    hostile_json,
    mutated,
)

pytestmark = pytest.mark.unit

C = content("f" * 64, 1, [numeric_baseline("x"), categorical_baseline("c", {"a": 5, "b": 5})])
CONTROL = [model_record(C), deployment("d", C)]


def rig(**options: Any):
    return drift_rig(CONTROL, **options)


def valid_event(i: int, t: int | None = None) -> bytes:
    return serde.encode(
        "FeatureEvent", event("d", i, T0 + i if t is None else t, {"x": 0.1, "c": "a"})
    )


def valid_prediction(i: int, t: int | None = None) -> bytes:
    return serde.encode("Prediction", prediction("d", i, C, 0.7, T0 + i if t is None else t))


def valid_actual(i: int, t: int | None = None) -> bytes:
    return serde.encode("Actual", actual("d", i, "1", T0 + 5000 + i if t is None else t))


def dead_letters(loop) -> dict[tuple[str, int], dict]:
    """The loop's dead letters by (source topic, offset); a repeat fails the test."""
    out: dict[tuple[str, int], dict] = {}
    for topic, _key, value in loop.producer.sent:
        if topic == loop.namer.deadletter:
            record = serde.decode(value, expected="DeadLetter")[1]
            coords = (record["source_topic"], record["source_offset"])
            assert coords not in out, f"dead-lettered twice: {coords}"
            out[coords] = record
    return out


def counted(loop, deployment_name: str = "d") -> int:
    """Events the deployment's windows took in or counted late, published or still open."""
    n = 0
    for topic, _key, value in loop.producer.sent:
        if topic == loop.namer.drift:
            r = serde.decode(value, expected="DriftReport")[1]
            if r["deployment"] == deployment_name:
                n += r["event_count"] + r["late_events"]
    m = loop.monitors.get(deployment_name)
    if m is not None:
        n += sum(w.aggregate.events + w.aggregate.late for w in m.windows.open.values())
        n += m.windows.late
    return n


def unexpected(loop) -> float:
    """Unexpected exceptions the loop's safety nets caught (should stay 0 for any input)."""
    get = loop.registry.get_sample_value
    errors = sum(
        get("streamops_errors_total", {"service": "drift", "category": c}) or 0
        for c in ("handler", "decode")
    )
    return errors + (get("streamops_drift_recoveries_total") or 0)


@pytest.mark.parametrize("module", [time_bounds, isolation])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# -- the exact inputs -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE_EVENTS))
def test_each_hostile_event_is_dead_lettered_and_the_next_valid_event_counted(name):
    data, reason = HOSTILE_EVENTS[name]
    loop = rig()
    loop.log.append(loop.events, data)
    loop.log.append(loop.events, valid_event(1))
    drain(loop)
    dl = dead_letters(loop)
    assert set(dl) == {(loop.events, 0)}
    assert dl[(loop.events, 0)]["original"] == data
    assert dl[(loop.events, 0)]["reason"] == reason.value
    assert dl[(loop.events, 0)]["service"] == "drift"
    assert counted(loop) == 1
    assert unexpected(loop) == 0
    assert loop.store.offsets[(loop.events, 0)] == 2


@pytest.mark.parametrize("name", sorted(HOSTILE_ACTUALS))
def test_each_hostile_actual_is_dead_lettered_and_the_next_valid_event_counted(name):
    data, reason = HOSTILE_ACTUALS[name]
    loop = rig()
    loop.log.append(loop.actuals, data)
    loop.log.append(loop.events, valid_event(1))
    drain(loop)
    dl = dead_letters(loop)
    assert set(dl) == {(loop.actuals, 0)}
    assert (dl[(loop.actuals, 0)]["original"], dl[(loop.actuals, 0)]["reason"]) == (
        data,
        reason.value,
    )
    assert counted(loop) == 1 and unexpected(loop) == 0


# -- time bounds ------------------------------------------------------------------------------


def test_a_far_future_event_does_not_make_later_events_late():
    loop = rig()
    loop.log.append(loop.events, valid_event(0))
    loop.log.append(loop.events, far_future_event())
    for i in range(1, 4):
        loop.log.append(loop.events, valid_event(i))
    drain(loop)
    dl = dead_letters(loop)
    assert [dl[k]["reason"] for k in sorted(dl)] == [Reason.FUTURE_EVENT_TIME.value]
    assert dl[(loop.events, 1)]["original"] == far_future_event()
    m = loop.monitors["d"]
    assert m.windows.max_time == T0 + 3  # the watermark follows the valid events only
    assert m.windows.late == 0 and counted(loop) == 4


def test_the_skew_is_the_limit_and_it_is_a_setting():
    now = 1_800_000_000.0
    loop = rig(max_future_skew_s=60)
    loop.bounds = TimeBounds(loop.settings.max_future_skew_s, clock=lambda: now)
    inside, beyond = int(now * 1000) + 60_000, int(now * 1000) + 60_001
    loop.log.append(loop.events, valid_event(0, inside))
    loop.log.append(loop.events, valid_event(1, beyond))
    loop.log.append(loop.events, valid_event(2, EARLIEST_MS - 1))  # before year 1
    loop.log.append(loop.events, valid_event(3, -5))  # old: accepted (late or not, counted)
    drain(loop)
    dl = dead_letters(loop)
    assert {k[1]: v["reason"] for k, v in dl.items()} == {
        1: Reason.FUTURE_EVENT_TIME.value,
        2: Reason.OUT_OF_RANGE.value,
    }
    assert "event_time" in dl[(loop.events, 1)]["error"]
    assert counted(loop) == 2


def test_the_future_skew_is_five_minutes_unless_the_environment_says_otherwise():
    assert DriftSettings().max_future_skew_s == 300
    env = {"STREAMOPS_DRIFT_MAX_FUTURE_SKEW_S": "60"}
    assert load_settings(DriftSettings, "drift", env).max_future_skew_s == 60
    with pytest.raises(ConfigError, match="max_future_skew_s >= 0"):
        load_settings(DriftSettings, "drift", {"STREAMOPS_DRIFT_MAX_FUTURE_SKEW_S": "-1"})


def test_far_future_events_read_as_columns_are_dead_lettered_one_by_one():
    """The columnar fast path: the times column is checked, and exactly the offending messages
    go to the dead-letter topic with their original bytes."""
    loop = rig(batch_size=20)
    for i in range(20):  # the per-message decoder teaches the layout to the column reader
        loop.log.append(loop.events, valid_event(i))
    drain(loop)
    batch = [valid_event(100 + i) for i in range(20)]
    batch[3] = valid_event(103, FAR_FUTURE_MS)
    batch[17] = valid_event(117, 2**62 - 1)
    batch[9] = valid_event(109, -(2**62))
    blocks, rest = loop.columns.read(batch)
    assert rest == [] and len(blocks) == 1  # all of them on the fast path
    # The limits of a long take 10 varint bytes: the per-message decoder reads them.
    extremes = [valid_event(120, 2**63 - 1), valid_event(121, -(2**63))]
    for value in batch + extremes:
        loop.log.append(loop.events, value)
    drain(loop)
    dl = dead_letters(loop)
    assert sorted(k[1] for k in dl) == [23, 29, 37, 40, 41]
    assert all(dl[(loop.events, 20 + i)]["original"] == batch[i] for i in (3, 9, 17))
    assert dl[(loop.events, 23)]["reason"] == Reason.FUTURE_EVENT_TIME.value
    assert dl[(loop.events, 29)]["reason"] == Reason.OUT_OF_RANGE.value
    assert dl[(loop.events, 41)]["reason"] == Reason.OUT_OF_RANGE.value
    assert counted(loop) == 37 and loop.monitors["d"].windows.max_time == T0 + 119
    assert unexpected(loop) == 0


def test_far_future_predictions_and_actuals_are_dead_lettered_on_both_paths():
    loop = rig(batch_size=20)
    for i in range(20):
        loop.log.append(loop.events, valid_event(i))
        loop.log.append(loop.predictions, valid_prediction(i))
    drain(loop)
    batch = [valid_prediction(20 + i) for i in range(20)]
    batch[5] = valid_prediction(25, FAR_FUTURE_MS)
    blocks, rest = loop.prediction_columns.read(batch)
    assert rest == [] and len(blocks) == 1
    for value in batch:
        loop.log.append(loop.predictions, value)
    loop.log.append(loop.actuals, valid_actual(3))
    loop.log.append(loop.actuals, valid_actual(4, FAR_FUTURE_MS))
    loop.log.append(loop.actuals, far_future_actual())
    drain(loop)
    dl = dead_letters(loop)
    assert sorted(dl) == [(loop.actuals, 1), (loop.actuals, 2), (loop.predictions, 25)]
    assert {v["reason"] for v in dl.values()} == {Reason.FUTURE_EVENT_TIME.value}
    assert dl[(loop.predictions, 25)]["original"] == batch[5]
    m = loop.monitors["d"]
    assert max(w.start for w in m.windows.open.values()) < T0 + 60_000  # no window in 2300
    assert unexpected(loop) == 0


# -- unexpected exceptions: the record's fault, not the process's ----------------------------


def _explode_on(monkeypatch, bad_time: int, alone_too: bool = True) -> None:
    """Make applying events raise (a stand-in for a bug) when one has ``bad_time``."""
    original = DeploymentMonitor._add_columns

    def add(self, times, columns, bad):
        if bad_time in np.asarray(times).tolist() and (alone_too or len(times) > 1):
            raise RuntimeError("a bug met its input")
        return original(self, times, columns, bad)

    monkeypatch.setattr(DeploymentMonitor, "_add_columns", add)


def test_a_record_that_makes_applying_fail_is_dead_lettered_and_the_rest_counted_once(
    monkeypatch,
):
    _explode_on(monkeypatch, T0 + 13)
    loop = rig(window_count=5, batch_size=10)
    values = [valid_event(i) for i in range(30)]
    for v in values:
        loop.log.append(loop.events, v)
    drain(loop)
    dl = dead_letters(loop)
    assert list(dl) == [(loop.events, 13)]
    assert dl[(loop.events, 13)]["reason"] == Reason.HANDLER_FAILED.value
    assert dl[(loop.events, 13)]["stage"] == "handle"
    assert "a bug met its input" in dl[(loop.events, 13)]["error"]
    assert dl[(loop.events, 13)]["original"] == values[13]
    assert counted(loop) == 29  # every other event once: the state was reloaded, not added to
    reports = [
        serde.decode(v, expected="DriftReport")[1]
        for t, _k, v in loop.producer.sent
        if t == loop.namer.drift
    ]
    assert sum(r["event_count"] for r in reports) == 25  # five full windows of five
    assert loop.store.offsets[(loop.events, 0)] == 30
    get = loop.registry.get_sample_value
    assert get("streamops_errors_total", {"service": "drift", "category": "handler"}) == 2
    assert get("streamops_drift_recoveries_total") == 2  # the batch, then the record alone


def test_a_failure_no_single_record_repeats_dead_letters_nothing(monkeypatch):
    _explode_on(monkeypatch, T0 + 13, alone_too=False)
    loop = rig(window_count=5, batch_size=10)
    for i in range(30):
        loop.log.append(loop.events, valid_event(i))
    drain(loop)
    assert dead_letters(loop) == {}
    assert counted(loop) == 30
    assert loop.registry.get_sample_value("streamops_drift_recoveries_total") == 1


def test_an_unexpected_decoder_error_dead_letters_the_record(monkeypatch):
    loop = rig()
    real = loop.decode

    def decode(topic, value):
        if value == b"trigger":
            raise IndexError("a decoder bug")
        return real(topic, value)

    loop.decode = decode
    loop.log.append(loop.actuals, b"trigger")
    loop.log.append(loop.events, valid_event(1))
    drain(loop)
    dl = dead_letters(loop)
    assert dl[(loop.actuals, 0)]["reason"] == Reason.DECODE_FAILED.value
    assert "IndexError('a decoder bug')" in dl[(loop.actuals, 0)]["error"]
    assert counted(loop) == 1
    assert (
        loop.registry.get_sample_value(
            "streamops_errors_total", {"service": "drift", "category": "decode"}
        )
        == 1
    )


# -- the fuzz test ----------------------------------------------------------------------------

VALID = {
    "events": [valid_event(i) for i in range(3)],
    "predictions": [valid_prediction(i) for i in range(3)],
    "actuals": [valid_actual(i) for i in range(3)],
}
TIME_FIELD = {"events": "event_time", "predictions": "event_time", "actuals": "actual_time"}


def _case(topic: str) -> st.SearchStrategy[tuple[str, bytes]]:
    kinds = [st.binary(max_size=200), st.sampled_from(VALID[topic]).flatmap(mutated)]
    if topic == "events":
        kinds.append(hostile_json("FeatureEvent"))
    if topic == "actuals":
        kinds.append(hostile_json("Actual"))
    return st.tuples(st.just(topic), st.one_of(kinds))


CASES = st.lists(
    st.one_of(_case("events"), _case("predictions"), _case("actuals")), min_size=1, max_size=12
)


def verdict(loop, topic: str, value: bytes) -> dict | None:
    """The record the per-message decoder and the time bounds accept, or None (refused)."""
    try:
        record = loop.decode(topic, value)[1]
    except PoisonMessage:
        return None
    field = TIME_FIELD[topic.rpartition(".")[2]]
    if loop.bounds.check(field, record[field], loop.bounds.latest()) is not None:
        return None
    return record


@settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(CASES)
@example([("actuals", b'{"association_id":"\\ud800","deployment":"d","label":1}')])
@example([("events", b'{"association_id":' + b"[" * 30_000)])
@example([("events", b'{"association_id":"a","deployment":"d","event_time":NaN,"features":{}}')])
@example([("actuals", b'{"association_id":"a","deployment":"d","label":1,"actual_time":1e30}')])
@example(
    [("events", b'{"association_id":"a","deployment":"d","features":{"x":' + b"9" * 400 + b"}}")]
)
@example([("events", valid_event(7, FAR_FUTURE_MS)), ("predictions", valid_prediction(7, 2**62))])
def test_no_input_escapes_the_drift_loop(cases):
    loop = rig(batch_size=12)
    for i in range(12):  # warm up the column readers, so hostile bytes meet the fast path too
        loop.log.append(loop.events, valid_event(100 + i))
        loop.log.append(loop.predictions, valid_prediction(100 + i))
    drain(loop)
    before = counted(loop)
    sent: dict[tuple[str, int], bytes] = {}
    accepted_events = 0
    for n, (name, value) in enumerate(cases):
        topic = getattr(loop, name)
        sent[(topic, loop.log.append(topic, value))] = value
        record = verdict(loop, topic, value)
        if name == "events" and record is not None and record["deployment"] == "d":
            accepted_events += 1
        sent[(loop.events, loop.log.append(loop.events, valid_event(200 + n)))] = None
    drain(loop)
    assert unexpected(loop) == 0  # handled by design, not by the safety net
    dl = dead_letters(loop)
    for coords, value in sent.items():
        if value is None:
            assert coords not in dl, "a valid event was dead-lettered"
            continue
        refused = verdict(loop, coords[0], value) is None
        assert (coords in dl) == refused, (coords, value[:80], dl.get(coords))
        if refused:
            assert dl[coords]["original"] == value
            assert Reason(dl[coords]["reason"])  # one of the bounded set
    assert counted(loop) - before == accepted_events + len(cases)
    for tp, end in ((tp, len(log)) for tp, log in loop.log.logs.items()):
        assert loop.store.offsets[tp] == end


class _FencedMessage:
    """What consume returns once a static member was fenced after a broker pause: an error
    whose code is _FATAL while its ``fatal()`` says False."""

    def error(self):
        from confluent_kafka import KafkaError

        return KafkaError(KafkaError._FATAL, "FENCED_INSTANCE_ID")


def test_a_consumer_fenced_after_a_broker_pause_ends_the_loop_instead_of_stalling_it():
    from services.common.errors import FatalError

    loop = rig()
    assert not _FencedMessage().error().fatal()  # why fatal() alone missed it
    with pytest.raises(FatalError, match="FENCED_INSTANCE_ID"):
        loop.step([_FencedMessage()])
