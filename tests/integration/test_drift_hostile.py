"""Issue 27 on the real broker and Redis: hostile input does not stop the drift service.

Each hostile event or actual (deep nesting, NaN / Infinity / 1e30 times, far-future times) is
followed by a valid event. The service must stay up, dead-letter each hostile message once with
its original bytes and reason, count every valid event in its window, and not let a far-future
event move the watermark (which would make every later event late).
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from services.common import serde
from services.common.errors import Reason
from services.common.settings import load_settings
from services.drift import app
from services.drift.config import DriftSettings
from services.drift.monitor import DeploymentMonitor
from tests.drift_service import monitor_state, start_drift, wait_consumed
from tests.drift_support import (
    T0,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
)
from tests.fuzz_cases import (
    FAR_FUTURE_MS,
    HOSTILE_ACTUALS,
    HOSTILE_EVENTS,
    far_future_actual,
    far_future_event,
)
from tests.kafka_support import make_topics, produce, read_all
from tests.signing_support import deployment_bytes, session_keys

pytestmark = pytest.mark.integration
TOPICS = ["events", "predictions", "actuals", "models", "deployments", "drift", "deadletter"]


def valid(i: int, t: int) -> bytes:
    return serde.encode("FeatureEvent", event("d", i, t, {"x": 0.3, "c": "a"}))


def test_hostile_events_and_actuals_are_dead_lettered_and_drift_keeps_counting(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    c = content("e" * 64, 1, [numeric_baseline("x"), categorical_baseline("c", {"a": 5, "b": 5})])
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    produce(
        kafka_bootstrap,
        namer.models,
        [(c["name"], serde.encode("ModelPublished", model_record(c)))],
    )
    produce(kafka_bootstrap, namer.deployments, [("d", deployment_bytes(deployment("d", c)))])
    start = T0 - T0 % 60_000  # the first event's window: [start, start + 60 s)
    hostile = [(namer.events, data, reason) for data, reason in HOSTILE_EVENTS.values()]
    hostile += [(namer.actuals, data, reason) for data, reason in HOSTILE_ACTUALS.values()]
    future = Reason.FUTURE_EVENT_TIME
    hostile += [
        (namer.events, far_future_event(), future),
        (
            namer.events,
            serde.encode("FeatureEvent", event("d", 999, FAR_FUTURE_MS, {"x": 1.0})),
            future,
        ),
        (namer.actuals, far_future_actual(), future),
    ]
    proc = start_drift(kafka_bootstrap, prefix, drift_group, tmp_path / "drift.log")
    ns = f"streamops:drift:{drift_group}"
    try:
        produce(kafka_bootstrap, namer.events, [("k", valid(0, start + 1000))])
        for i, (topic, data, _reason) in enumerate(hostile, start=1):
            produce(kafka_bootstrap, topic, [("k", data)])
            produce(kafka_bootstrap, namer.events, [("k", valid(i, start + 1000 + i * 100))])
        # An event five minutes on closes the first window (watermark = its time - 10 s).
        produce(kafka_bootstrap, namer.events, [("k", valid(500, start + 300_000))])
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events, namer.actuals], proc)
        assert proc.alive(), proc.log_tail()
        code, seconds = proc.terminate()
        assert code == 0 and seconds < 10, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    letters = [
        serde.decode(v, expected="DeadLetter")[1]
        for *_, v in read_all(kafka_bootstrap, namer.deadletter)
    ]
    got = sorted((d["source_topic"], d["original"], d["reason"]) for d in letters)
    assert got == sorted((t, data, reason.value) for t, data, reason in hostile)
    assert all(d["service"] == "drift" for d in letters)
    reports = [
        serde.decode(v, expected="DriftReport")[1]
        for *_, v in read_all(kafka_bootstrap, namer.drift)
    ]
    first = [r for r in reports if r["window_start"] == start]
    assert len(first) == 1, reports
    # Every valid event in the window is counted, none late: the far-future events moved nothing.
    assert first[0]["event_count"] == len(hostile) + 1
    assert first[0]["late_events"] == 0
    log = (tmp_path / "drift.log").read_text()
    assert "recovering" not in log and "Traceback" not in log, proc.log_tail()


def test_a_record_that_makes_applying_fail_is_dead_lettered_and_the_rest_counted_once(
    kafka_bootstrap, redis_client, prefix, drift_group, monkeypatch
):
    culprit = T0 + 13
    original = DeploymentMonitor._add_columns

    def add(self, times, columns, bad):
        if culprit in np.asarray(times).tolist():
            raise RuntimeError("a bug met its input")
        return original(self, times, columns, bad)

    monkeypatch.setattr(DeploymentMonitor, "_add_columns", add)
    c = content("b" * 64, 1, [numeric_baseline("x"), categorical_baseline("c", {"a": 5, "b": 5})])
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    produce(
        kafka_bootstrap,
        namer.models,
        [(c["name"], serde.encode("ModelPublished", model_record(c)))],
    )
    produce(kafka_bootstrap, namer.deployments, [("d", deployment_bytes(deployment("d", c)))])
    values = [valid(i, T0 + i) for i in range(40)]
    produce(kafka_bootstrap, namer.events, [("k", v) for v in values])  # one batch, in order
    overrides = {
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": prefix,
        "group_id": drift_group,
        "window_count": 10,
        "metrics_port": 0,
        "max_wait_ms": 50,
        **session_keys().flags(),  # trusts the keys model_record and deployment_bytes sign with
    }
    settings = load_settings(DriftSettings, "drift", os.environ, overrides)
    stop = threading.Event()
    crashed: list[BaseException] = []

    def serve() -> None:
        try:
            app.run(settings, stop)
        except BaseException as exc:  # the test reports it
            crashed.append(exc)

    thread = threading.Thread(target=serve, name="drift-in-process", daemon=True)
    thread.start()
    ns = f"streamops:drift:{drift_group}"
    try:
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], timeout_s=60)
    finally:
        stop.set()
        thread.join(20)
    assert not crashed and not thread.is_alive(), crashed
    letters = [
        serde.decode(v, expected="DeadLetter")[1]
        for *_, v in read_all(kafka_bootstrap, namer.deadletter)
    ]
    assert [(d["source_offset"], d["reason"], d["stage"]) for d in letters] == [
        (13, Reason.HANDLER_FAILED.value, "handle")
    ]
    assert letters[0]["original"] == values[13] and "a bug met its input" in letters[0]["error"]
    reports = [
        serde.decode(v, expected="DriftReport")[1]
        for *_, v in read_all(kafka_bootstrap, namer.drift)
    ]
    assert [r["event_count"] for r in reports] == [10, 10, 10]
    still_open = monitor_state(redis_client, ns, "d")["windows"]["open"]
    assert [n for _key, _seq, _start, _end, n, _agg in still_open] == [9]  # 39 = 3 x 10 + 9
