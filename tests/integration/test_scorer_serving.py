"""The scorer on the real broker: serving, shadow, A/B split, humility, R9, bad input."""

from __future__ import annotations

import pytest

from services.common import serde
from tests.kafka_support import produce, read_all, wait_caught_up
from tests.model_factory import credit_content, deployment, keypair, published
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def predictions(w) -> list[dict]:
    return [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.predictions)
    ]


def dead_letters(w) -> list[dict]:
    return [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.deadletter)
    ]


def run_until_caught_up(w, proc, group):
    proc.start()
    try:
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()


def test_champion_and_shadow_challenger_score_every_event_tagged(kafka_bootstrap, prefix, tmp_path):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1, v2 = v1_signed(w), published(credit_content(2, estimator="rf"), w.key)
    w.publish(v1, v2)
    w.deploy(deployment(v1["content"], challengers=({"content": v2["content"], "weight": 0.0},)))
    ids = w.events(1500)
    group = f"{prefix}scorer"
    run_until_caught_up(w, w.scorer(group=group), group)
    rows = predictions(w)
    champion = [r for r in rows if r["role"] == "champion"]
    shadow = [r for r in rows if r["role"] == "challenger"]
    assert sorted(r["association_id"] for r in champion) == sorted(ids)
    assert sorted(r["association_id"] for r in shadow) == sorted(ids)
    assert all(r["served"] and r["model_version"] == 1 for r in champion)
    assert all(not r["served"] and r["model_version"] == 2 for r in shadow)
    assert all(r["model_id"] == v1["content"]["model_id"] for r in champion)
    assert all(r["prediction"] in ("0", "1") for r in rows)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in rows)
    assert all(r["input_offset"] >= 0 and r["event_time"] > 0 for r in rows)


def test_ab_split_is_sticky_and_follows_weights(kafka_bootstrap, prefix, tmp_path):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1, v2 = v1_signed(w), published(credit_content(2, estimator="rf"), w.key)
    w.publish(v1, v2)
    w.deploy(
        deployment(
            v1["content"], mode="ab", challengers=({"content": v2["content"], "weight": 0.3},)
        )
    )
    ids = w.events(3000)
    group = f"{prefix}scorer"
    run_until_caught_up(w, w.scorer(group=group), group)
    rows = predictions(w)
    assert sorted(r["association_id"] for r in rows) == sorted(ids)  # exactly one row each
    share = sum(r["model_version"] == 2 for r in rows) / len(rows)
    assert share == pytest.approx(0.3, abs=0.04)
    assert all(r["served"] for r in rows)


def test_humility_route_sends_uncertain_events_to_review(kafka_bootstrap, prefix, tmp_path):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = published(credit_content(1, estimator="rf"), w.key)  # rf: a spread of confidences
    w.publish(v1)
    rule = {
        "kind": "uncertain",
        "feature": None,
        "low": 0.0,
        "high": 0.75,
        "margin": 0.0,
        "action": "route",
        "override_value": None,
    }
    w.deploy(deployment(v1["content"], humility=[rule]))
    w.events(800)
    group = f"{prefix}scorer"
    run_until_caught_up(w, w.scorer(group=group), group)
    rows = predictions(w)
    flagged = {r["association_id"] for r in rows if "uncertain" in r["humility"]}
    for r in rows:
        top = max(r["probabilities"].values())
        assert ("uncertain" in r["humility"]) == (top <= 0.75), r
    review = {k.decode() for _p, _o, k, _v in read_all(w.bootstrap, w.namer.review)}
    assert 0 < len(flagged) < len(rows) and review == flagged


def test_r9_tampered_unsigned_and_foreign_models_are_never_served(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    good = published(credit_content(1), w.key)
    tampered = published(credit_content(2, estimator="rf"), w.key)
    tampered["content"]["lineage"]["metrics"]["roc_auc"] = 0.999  # after signing
    unsigned = {**published(credit_content(3, estimator="logreg"), w.key), "signature": b""}
    other_dir = tmp_path / "other-keys"
    other_dir.mkdir()
    foreign = published({**credit_content(1, seed=3), "version": 4}, keypair(other_dir))
    w.publish(good, tampered, unsigned, foreign)
    for i, bad in enumerate((tampered, unsigned, foreign), 1):
        w.deploy(deployment(bad["content"], revision=i))  # none can become visible
    w.deploy(deployment(good["content"], revision=10, name="ok"))
    w.events(300, deployment="credit")
    w.events(300, deployment="ok", start=1000)
    group = f"{prefix}scorer"
    proc = w.scorer(group=group)
    run_until_caught_up(w, proc, group)
    rows = predictions(w)
    assert len(rows) == 300 and {r["model_id"] for r in rows} == {good["content"]["model_id"]}
    dead = dead_letters(w)
    assert len(dead) == 300 and {d["reason"] for d in dead} == {"unknown_deployment"}
    log = proc.log_path.read_text()
    assert log.count("model rejected (bad_signature)") == 3, proc.log_tail(60)


def test_bad_events_are_dead_lettered_and_the_partition_keeps_flowing(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    good = w.events(500)
    bad = [
        (
            "missing",
            {
                "association_id": "missing",
                "deployment": "credit",
                "event_time": 1,
                "features": {"salary": 1.0},
                "attributes": {},
            },
        ),
        (
            "wrongtype",
            {
                "association_id": "wrongtype",
                "deployment": "credit",
                "event_time": 1,
                "features": {
                    **{f: 1.0 for f in ("salary", "commission", "age", "hvalue", "hyears", "loan")},
                    "salary": "lots",
                    "elevel": "1",
                    "car": "2",
                    "zipcode": "3",
                },
                "attributes": {},
            },
        ),
    ]
    produce(w.bootstrap, w.namer.events, [(k, serde.encode("FeatureEvent", r)) for k, r in bad])
    good += w.events(500, start=10_000)
    group = f"{prefix}scorer"
    run_until_caught_up(w, w.scorer(group=group), group)
    assert sorted(r["association_id"] for r in predictions(w)) == sorted(good)
    reasons = {
        serde.decode(d["original"], expected="FeatureEvent")[1]["association_id"]: d["reason"]
        for d in dead_letters(w)
    }
    assert reasons == {"missing": "schema_mismatch", "wrongtype": "wrong_type"}
