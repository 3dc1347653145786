"""Champion/challenger routing and humility rules."""

from __future__ import annotations

import numpy as np
import pytest

from services.scorer.humility import apply_rules
from services.scorer.routing import CHALLENGER, CHAMPION, VARIANT, assign, bucket, shadow_plan

pytestmark = pytest.mark.unit

DEPLOY = {
    "mode": "ab",
    "champion": {"model_id": "m1"},
    "challengers": [
        {"model": {"model_id": "m2"}, "weight": 0.2},
        {"model": {"model_id": "m3"}, "weight": 0.1},
    ],
}


def test_shadow_scores_every_challenger_but_only_the_champion_answers():
    plan = shadow_plan({**DEPLOY, "mode": "shadow"})
    assert [(v.model_id, v.role, v.served) for v in plan] == [
        ("m1", CHAMPION, True),
        ("m2", CHALLENGER, False),
        ("m3", CHALLENGER, False),
    ]


def test_ab_split_follows_the_weights_within_tolerance_and_is_sticky():
    ids = [f"user-{i}" for i in range(20_000)]
    got = [v.model_id for v in assign(ids, DEPLOY)]
    share = {m: got.count(m) / len(ids) for m in ("m1", "m2", "m3")}
    assert share["m1"] == pytest.approx(0.7, abs=0.015)
    assert share["m2"] == pytest.approx(0.2, abs=0.015)
    assert share["m3"] == pytest.approx(0.1, abs=0.015)
    again = [v.model_id for v in assign(list(reversed(ids)), DEPLOY)]
    assert list(reversed(again)) == got
    assert all(v.served for v in assign(ids[:50], DEPLOY))
    assert {v.role for v in assign(ids[:500], DEPLOY)} == {CHAMPION, VARIANT}


def test_bucket_is_stable_and_uniform_enough():
    assert bucket("abc") == bucket("abc")
    values = np.array([bucket(str(i)) for i in range(10_000)])
    assert 0 <= values.min() and values.max() < 1
    assert abs(values.mean() - 0.5) < 0.02


def test_weights_above_one_are_refused():
    bad = {
        **DEPLOY,
        "challengers": [
            {"model": {"model_id": "m2"}, "weight": 0.8},
            {"model": {"model_id": "m3"}, "weight": 0.4},
        ],
    }
    with pytest.raises(ValueError, match="sum to"):
        assign(["a"], bad)


BASELINE = {
    "features": [
        {"name": "age", "kind": "numeric", "min": 20.0, "max": 80.0, "categories": {}},
        {
            "name": "car",
            "kind": "categorical",
            "min": None,
            "max": None,
            "categories": {"1": 10, "2": 5},
        },
    ]
}
COLUMNS = {
    "age": np.array([30.0, 95.0, np.nan, 10.0]),
    "car": np.array(["1", "9", None, "2"], dtype=object),
}
TOP = np.array([0.95, 0.55, 0.51, 0.99])


@pytest.mark.parametrize("action", ["flag", "override", "route"])
def test_each_rule_kind_with_each_action(action):
    rules = [
        {"kind": "uncertain", "low": 0.5, "high": 0.6, "action": action, "override_value": "0"},
        {
            "kind": "outlier",
            "feature": None,
            "margin": 0.1,
            "action": action,
            "override_value": "0",
        },
        {"kind": "unseen_category", "feature": "car", "action": action, "override_value": "0"},
    ]
    v = apply_rules(rules, COLUMNS, TOP, BASELINE, 4)
    assert v[0].flags == []
    assert v[1].flags == ["uncertain", "outlier:age", "unseen:car"]
    assert v[2].flags == ["uncertain"]  # missing values are neither outliers nor unseen
    assert v[3].flags == ["outlier:age"]  # 10 < 20 - 6
    acted = [i for i, x in enumerate(v) if (x.overridden if action == "override" else x.route)]
    assert acted == ([] if action == "flag" else [1, 2, 3])
    if action == "override":
        assert v[1].override == "0" and v[0].override is None


def test_outlier_margin_widens_the_range():
    rules = [{"kind": "outlier", "feature": "age", "margin": 0.5, "action": "flag"}]
    v = apply_rules(rules, COLUMNS, None, BASELINE, 4)
    assert [x.flags for x in v] == [[], [], [], []]  # 95 and 10 are within [-10, 110]


def test_unknown_rule_kinds_and_actions_are_refused():
    with pytest.raises(ValueError, match="kind"):
        apply_rules([{"kind": "vibes", "action": "flag"}], COLUMNS, TOP, BASELINE, 4)
    with pytest.raises(ValueError, match="action"):
        apply_rules([{"kind": "uncertain", "action": "panic"}], COLUMNS, TOP, BASELINE, 4)
