"""A deployment's configuration: checked when requested, field named, and what drift watches."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from services.common import monitored_metrics
from services.common.monitored_metrics import METRICS
from services.drift.monitor import DeploymentMonitor, MonitorConfig, threshold_values
from services.drift.reference import PER_FEATURE, ReferenceBook
from services.registry import deployment_config
from services.registry.change import Change, InvalidChange, next_deployment
from services.registry.deployment_config import InvalidField, normalize
from tests.drift_support import (
    T0,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
)

pytestmark = pytest.mark.unit

MODEL = {
    "task": "classification",
    "classes": ["0", "1"],
    "signature_in": {
        "features": [{"name": "age", "kind": "numeric"}, {"name": "car", "kind": "categorical"}]
    },
}
REGRESSION = {**MODEL, "task": "regression", "classes": []}
PSI = {"metric": "psi", "feature": "age", "warning": 0.1, "critical": 0.25}


def test_doctests():
    assert doctest.testmod(deployment_config).failed == 0
    assert doctest.testmod(monitored_metrics).failed == 0


def test_a_threshold_missing_hysteresis_and_direction_gets_the_metrics_defaults():
    (t,) = normalize({"thresholds": [PSI]}, MODEL)["thresholds"]
    assert t == {**PSI, "hysteresis": 0.0, "direction": "above"}
    (ks,) = normalize(
        {"thresholds": [{"metric": "ks_p", "warning": 0.01, "critical": 0.001}]}, MODEL
    )["thresholds"]
    assert ks["direction"] == "below" and ks["feature"] is None


@pytest.mark.parametrize(
    ("setup", "field", "words"),
    [
        ({"thresholds": [{**PSI, "metric": "psii"}]}, "thresholds[0].metric", "did you mean psi"),
        ({"thresholds": [{**PSI, "direction": "sideways"}]}, "thresholds[0].direction", "above"),
        ({"thresholds": [{**PSI, "feature": "salary"}]}, "thresholds[0].feature", "no feature"),
        (
            {"thresholds": [{**PSI, "metric": "ks_p", "feature": "car"}]},
            "thresholds[0].feature",
            "numeric",
        ),
        (
            {"thresholds": [{"metric": "rmse", "warning": 1, "critical": 2}]},
            "thresholds[0].metric",
            "regression",
        ),
        ({"thresholds": [{**PSI, "critical": 0.05}]}, "thresholds[0].critical", "less severe"),
        ({"thresholds": [{**PSI, "warning": float("nan")}]}, "thresholds[0].warning", "finite"),
        ({"thresholds": [{**PSI, "warning": "high"}]}, "thresholds[0].warning", "number"),
        ({"thresholds": [{"metric": "psi", "critical": 0.2}]}, "thresholds[0].warning", "missing"),
        ({"thresholds": [{**PSI, "hysteresis": -1}]}, "thresholds[0].hysteresis", "outside"),
        ({"thresholds": [{**PSI, "colour": "red"}]}, "thresholds[0].colour", "unknown field"),
        ({"thresholds": [PSI, PSI]}, "thresholds[1]", "already thresholds[0]"),
        (
            {"thresholds": [{**PSI, "metric": "accuracy"}]},
            "thresholds[0].feature",
            "deployment-wide",
        ),
        ({"thresholds": "psi"}, "thresholds", "a list"),
        (
            {"humility": [{"kind": "uncertain", "low": 0.6, "high": 0.4}]},
            "humility[0].high",
            "below low",
        ),
        ({"humility": [{"kind": "odd"}]}, "humility[0].kind", "uncertain"),
        (
            {"humility": [{"kind": "outlier", "action": "override"}]},
            "humility[0].override_value",
            "needs",
        ),
        (
            {"humility": [{"kind": "outlier", "action": "override", "override_value": "2"}]},
            "humility[0].override_value",
            "not a class",
        ),
        (
            {"humility": [{"kind": "unseen_category", "feature": "age"}]},
            "humility[0].feature",
            "categorical",
        ),
        ({"window_seconds": 0}, "window_seconds", "outside"),
        ({"window_seconds": True}, "window_seconds", "whole number"),
        ({"label_delay_seconds": 0}, "label_delay_seconds", "outside"),
        ({"label_delay_seconds": 8 * 86_400}, "label_delay_seconds", "outside 1..604800"),
        ({"label_delay_seconds": "1h"}, "label_delay_seconds", "whole number"),
        ({"policy": {"auto_aprove": True}}, "policy.auto_aprove", "unknown field"),
        ({"policy": {"retrain_after_windows": 0}}, "policy.retrain_after_windows", "outside"),
        ({"policy": {"review_topic": "a b"}}, "policy.review_topic", "topic name"),
        ({"mode": "canary"}, "mode", "shadow"),
        ({"external": "yes"}, "external", "true or false"),
        ({"colour": 1}, "setup.colour", "unknown field"),
    ],
)
def test_an_invalid_configuration_names_its_field(setup, field, words):
    with pytest.raises(InvalidField) as caught:
        normalize(setup, MODEL)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_regression_and_override_values_follow_the_champion():
    (r,) = normalize(
        {"humility": [{"kind": "outlier", "action": "override", "override_value": 3}]}, REGRESSION
    )["humility"]
    assert r["override_value"] == 3.0 and r["margin"] == 0.0 and r["feature"] is None
    with pytest.raises(InvalidField, match="probabilities"):
        normalize({"humility": [{"kind": "uncertain", "low": 0.4, "high": 0.6}]}, REGRESSION)
    (c,) = normalize(
        {
            "humility": [
                {
                    "kind": "uncertain",
                    "low": 0.4,
                    "high": 0.6,
                    "action": "override",
                    "override_value": 1,
                }
            ]
        },
        MODEL,
    )["humility"]
    assert c["override_value"] == "1"  # a class label, as the scorer serves it


def test_later_changes_carry_their_configuration_and_apply_declares_everything():
    champion = {"model_name": "m", "model_id": "a" * 64, "version": 1}
    other = {"model_name": "m", "model_id": "b" * 64, "version": 2}
    kw = {"approver": "bo", "reason": "r", "now_ms": 1}
    r1 = next_deployment("d", None, [], Change("set_champion", model=champion), **kw)
    setup = normalize({"thresholds": [PSI], "policy": {"retrain_after_windows": 5}}, MODEL)
    r2 = next_deployment("d", r1, [r1], Change("configure", setup=setup), **kw)
    assert r2["revision"] == 2 and r2["thresholds"] == setup["thresholds"]
    assert r2["policy"] == {**r1["policy"], "retrain_after_windows": 5}  # a partial policy merges
    r3 = next_deployment(
        "d",
        r2,
        [r1, r2],
        Change("add_challenger", model=other, weight=0.1, setup={"mode": "ab"}),
        **kw,
    )
    assert r3["mode"] == "ab" and r3["thresholds"] == r2["thresholds"]
    delayed = normalize({"label_delay_seconds": 7200}, MODEL)
    r3 = next_deployment("d", r3, [r1, r2, r3], Change("configure", setup=delayed), **kw)
    assert r3["label_delay_seconds"] == 7200 and r3["mode"] == "ab"
    declared = Change("apply", model=champion, setup={"window_seconds": 30})
    r4 = next_deployment("d", r3, [r1, r2, r3], declared, **kw)
    assert (r4["challengers"], r4["thresholds"], r4["mode"], r4["window_seconds"]) == (
        [],
        [],
        "shadow",
        30,
    )
    assert r4["label_delay_seconds"] is None, "apply declares the whole deployment: default"
    assert normalize({"label_delay_seconds": None}, MODEL) == {"label_delay_seconds": None}
    with pytest.raises(InvalidChange, match="needs setup"):
        Change("configure").validate()
    with pytest.raises(InvalidChange, match="listed twice"):
        next_deployment(
            "d",
            None,
            [],
            Change("apply", model=champion, challengers=[{"model": champion, "weight": 0}]),
            **kw,
        )


def test_the_catalogue_is_what_drift_reports_and_expands():
    assert {m: s.kinds for m, s in METRICS.items() if s.per_feature} == PER_FEATURE
    features = [numeric_baseline("x"), categorical_baseline("c", {"a": 50, "b": 50})]
    c = content("a" * 64, 1, features)
    book = ReferenceBook()
    book.apply(model_record(c))
    book.apply(deployment("d", c))
    monitor = DeploymentMonitor(book.get("d"), MonitorConfig(window_count=10))
    monitor.add_events([event("d", i, T0 + i, {"x": 0.1, "c": "a"}) for i in range(10)])
    (w,) = monitor.close_due()
    reported = {metric for metric, _feature in threshold_values(w.figures)}
    accuracy = {m for m, s in METRICS.items() if s.task is not None}
    assert reported <= set(METRICS)
    # accuracy figures and change points need joined labels, label coverage predictions
    assert set(METRICS) - reported <= accuracy | {"label_coverage", "change_point"}


def test_a_threshold_set_in_a_later_revision_fires_in_drift():
    features = [numeric_baseline("x")]
    c = content("a" * 64, 1, features)
    book = ReferenceBook()
    book.apply(model_record(c))
    book.apply(deployment("d", c, thresholds=[], revision=1))
    monitor = DeploymentMonitor(book.get("d"), MonitorConfig(window_count=1000))
    rng = np.random.default_rng(1)

    def shifted_window(k: int) -> list:
        xs = rng.normal(1.5, 1.0, 1000)
        monitor.add_events(
            [event("d", k * 1000 + i, T0 + k * 1000 + i, {"x": float(x)}) for i, x in enumerate(xs)]
        )
        return [t for w in monitor.close_due() for t in w.transitions]

    assert shifted_window(0) == []  # no threshold yet: nothing fires
    later = normalize(
        {"thresholds": [{"metric": "psi", "feature": "x", "warning": 0.1, "critical": 0.25}]}, None
    )
    book.apply(deployment("d", c, thresholds=later["thresholds"], revision=2))
    monitor.switch(book.get("d"))
    assert [(t.metric, t.feature, t.kind) for t in shifted_window(1)] == [("psi", "x", "firing")]
