"""The scorer on the real broker against hostile input and out-of-order control records (issue 27).

Hostile events, each followed by a valid one in the same partition: every valid event is answered,
every hostile one is in the dead-letter topic with its original bytes, and the scorer stays up.
A Deployment produced before its model is served once the model arrives, at replay or live.
"""

from __future__ import annotations

import json

import pytest

from services.common import serde
from services.trainer.dataset import credit_rows
from tests.kafka_support import produce, read_all, wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def champion_rows(w) -> list[dict]:
    rows = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.predictions)
    ]
    return [r for r in rows if r["role"] == "champion"]


def event(aid: str, features: dict, to: str = "credit") -> dict:
    return {
        "association_id": aid,
        "deployment": to,
        "event_time": 1_700_000_000_000,
        "features": features,
        "attributes": {},
    }


def hostile_inputs() -> dict[str, tuple[bytes, str]]:
    """Name -> (bytes, the dead letter's reason)."""
    row = next(iter(credit_rows(1, seed=9)))[0]
    nan_json = json.dumps(event("nan", {**row, "salary": "NAN"})).replace('"NAN"', "NaN")
    return {
        "wrong_type": (
            serde.encode("FeatureEvent", event("wrong", {**row, "salary": "lots"})),
            "wrong_type",
        ),
        "nan_json_token": (nan_json.encode(), ""),  # checked below: non_finite or invalid_json
        "huge_string": (
            serde.encode("FeatureEvent", event("huge", {**row, "zipcode": "z" * 100_000})),
            "oversize",
        ),
        "unknown_deployment": (
            serde.encode("FeatureEvent", event("nobody", row, to="nobody")),
            "unknown_deployment",
        ),
        # Depends on the shared JSON decoder refusing RecursionError (issue 27, part A).
        "deep_json": (
            b'{"association_id": "deep", "deployment": "credit", "features": '
            + b"[" * 20_000  # deeper than the parser's recursion limit, under the size limit
            + b"]" * 20_000
            + b"}",
            "invalid_json",
        ),
        "garbage": (b"\x00\xff\xfe garbage \x13\x37" * 7, "not_avro"),
    }


def test_hostile_events_are_dead_lettered_and_each_valid_event_after_them_answered(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    hostile = hostile_inputs()
    rows = [f for f, _ in credit_rows(len(hostile), seed=4)]
    items, valid_ids = [], []
    for (name, (value, _reason)), features in zip(hostile.items(), rows, strict=True):
        key = f"pair-{name}"  # one key: the valid event follows the hostile one in its partition
        aid = f"{prefix}{name}"
        items += [(key, value), (key, serde.encode("FeatureEvent", event(aid, features)))]
        valid_ids.append(aid)
    produce(w.bootstrap, w.namer.events, items)
    group = f"{prefix}scorer"
    proc = w.scorer(group=group).start()
    try:
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
        assert proc.alive(), proc.log_tail()
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()
    answered = champion_rows(w)
    assert sorted(r["association_id"] for r in answered) == sorted(valid_ids)
    assert {r["model_id"] for r in answered} == {v1["content"]["model_id"]}
    dead = [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.deadletter)
    ]
    by_original = {d["original"]: d for d in dead}
    assert len(dead) == len(hostile) == len(by_original)
    for name, (value, reason) in hostile.items():
        assert value in by_original, f"{name} is not in the dead-letter topic"
        letter = by_original[value]
        assert letter["service"] == "scorer" and letter["reason"], letter
        if reason:
            assert letter["reason"] == reason, (name, letter["reason"], letter["error"])
    assert by_original[hostile["nan_json_token"][0]]["reason"] in ("non_finite", "invalid_json")


def test_a_deployment_produced_before_its_model_is_served_by_a_scorer_started_after_both(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.deploy(deployment(v1["content"]))  # the model is not on the models topic yet
    w.publish(v1)
    ids = w.events(300)
    group = f"{prefix}scorer"
    proc = w.scorer(group=group).start()
    try:
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()
    rows = champion_rows(w)
    assert sorted(r["association_id"] for r in rows) == sorted(ids)
    assert {r["model_id"] for r in rows} == {v1["content"]["model_id"]}


def test_a_deployment_held_at_replay_is_applied_when_its_model_arrives_live(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.deploy(deployment(v1["content"]))
    group = f"{prefix}scorer"
    proc = w.scorer(group=group).start()
    try:
        proc.wait_for_log("1 deployments held", timeout_s=60)  # the replay saw no model
        w.publish(v1)
        proc.wait_for_log("deployment credit r1: champion credit v1", timeout_s=60)
        ids = w.events(300)
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()
    rows = champion_rows(w)
    assert sorted(r["association_id"] for r in rows) == sorted(ids)
    assert {r["model_id"] for r in rows} == {v1["content"]["model_id"]}
