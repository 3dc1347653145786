"""The release controller's evidence and policy checks, without a registry."""

from __future__ import annotations

import doctest
import importlib

import pytest
from scipy import stats

from services.registry import release_evidence, release_policy
from services.registry.config_fields import InvalidField

pytestmark = pytest.mark.unit

POLICY = release_policy.normalize({"min_windows": 2, "min_labels": 100, "margin": 0.05})


@pytest.mark.parametrize(
    "name",
    [
        "services.registry.release_evidence",
        "services.registry.release_policy",
        "services.registry.config_fields",
    ],
)
def test_docstring_examples(name: str) -> None:
    failed, tried = doctest.testmod(importlib.import_module(name))
    assert tried > 0 and failed == 0


def _report(start: int, champion: str = "a", labels: int = 100, **paired) -> dict:
    entry = {"n": 100, "champion_only": 0, "challenger_only": 0, "diff_sum": 0.0}
    entry |= {"diff_sq_sum": 0.0, **paired}
    return {
        "model_id": champion,
        "window_start": start,
        "window_end": start + 10,
        "labels_joined": labels,
        "metrics": {"accuracy": 0.8, "mae": 2.0},
        "challengers": [{"model_id": "b", "paired": entry}],
    }


def test_mcnemar_on_the_discordant_events_of_every_window_since_the_shadow_began():
    reports = [_report(0, champion_only=50, challenger_only=0)]  # before: not counted
    reports += [_report(t, champion_only=5, challenger_only=15) for t in (100, 200)]
    v = release_evidence.judge(reports, "a", "b", "classification", POLICY, since_ms=100)
    assert (v.decision, v.windows, v.labels) == ("promote", 2, 200)
    assert v.difference == pytest.approx(20 / 200)
    assert v.p_value == pytest.approx(stats.binomtest(30, 40, 0.5).pvalue)


def test_better_by_the_margin_but_not_significant_waits_then_retires_at_max_windows():
    close = [_report(t, champion_only=10, challenger_only=15) for t in (0, 1)]
    v = release_evidence.judge(close, "a", "b", "classification", POLICY, since_ms=0)
    assert v.decision == "wait" and v.p_value > 0.05  # +0.05 accuracy, p about 0.2
    many = [_report(t, champion_only=10, challenger_only=15) for t in range(20)]
    strict = {**POLICY, "max_windows": 20, "significance": 0.01}
    v = release_evidence.judge(many, "a", "b", "classification", strict, since_ms=0)
    assert v.decision == "promote", "twenty such windows are significant"
    noisy = [_report(t, champion_only=45, challenger_only=50) for t in range(20)]
    v = release_evidence.judge(noisy, "a", "b", "classification", strict, since_ms=0)
    assert v.decision == "retire" and "not significant" in v.reason
    assert v.p_value == pytest.approx(stats.binomtest(1000, 1900, 0.5).pvalue)


def test_too_little_evidence_waits_and_is_retired_after_max_windows():
    thin = [_report(t, n=10, champion_only=0, challenger_only=5) for t in range(3)]
    v = release_evidence.judge(thin, "a", "b", "classification", POLICY, since_ms=0)
    assert v.decision == "wait" and v.labels == 30
    policy = {**POLICY, "max_windows": 3}
    v = release_evidence.judge(thin, "a", "b", "classification", policy, since_ms=0)
    assert v.decision == "retire" and "not enough evidence" in v.reason


def test_regression_uses_a_paired_t_test_relative_to_the_champions_error():
    # d = |challenger error| - |champion error|: -0.4 on average, sd about 0.2, champion MAE 2
    reports = [_report(t, diff_sum=-40.0, diff_sq_sum=100 * (0.16 + 0.04)) for t in (0, 1)]
    v = release_evidence.judge(reports, "a", "b", "regression", POLICY, since_ms=0)
    assert v.decision == "promote" and v.difference == pytest.approx(0.4 / 2.0)
    assert v.p_value < 1e-10
    same = [_report(t, diff_sum=0.0, diff_sq_sum=4.0) for t in (0, 1)]
    v = release_evidence.judge(same, "a", "b", "regression", POLICY, since_ms=0)
    assert v.decision == "retire" and v.p_value == pytest.approx(1.0)


def test_the_guard_compares_the_first_windows_after_the_swap_with_the_last_before():
    before = [_report(t, champion="a") | {"metrics": {"accuracy": 0.9}} for t in (0, 20, 40)]
    after = [_report(t, champion="b") | {"metrics": {"accuracy": 0.8}} for t in (100, 120)]
    g = release_evidence.guard(before + after, "a", "b", "classification", 100, 3, 0.02)
    assert g.decision == "wait"
    late = _report(140, champion="b") | {"metrics": {"accuracy": 0.99}}
    g = release_evidence.guard(before + after + [late], "a", "b", "classification", 100, 3, 0.02)
    assert g.decision == "rollback" and g.after == pytest.approx((0.8 * 2 + 0.99) / 3)
    g = release_evidence.guard(before + after + [late], "a", "b", "classification", 100, 3, 0.2)
    assert g.decision == "keep"
    unlabelled = _report(160, champion="b", labels=0)
    g = release_evidence.guard(before + after[:1] + [unlabelled] * 5, "a", "b", "x", 100, 2, 0.0)
    assert g.decision == "wait", "windows without labels are not evidence"


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"action": "canary"}, "release.action"),
        ({"approval": "maybe"}, "release.approval"),
        ({"min_windows": 0}, "release.min_windows"),
        ({"significance": 0.9}, "release.significance"),
        ({"min_windows": 10, "max_windows": 5}, "release.max_windows"),
        ({"rollback_windows": True}, "release.rollback_windows"),
        ({"colour": "red"}, "release.colour"),
        ("auto", "release"),
        ({"retrain_on": ["acuracy"]}, "release.retrain_on[0]"),
        ({"retrain_on": "accuracy"}, "release.retrain_on"),
    ],
)
def test_an_invalid_release_policy_names_its_field(policy, field):
    with pytest.raises(InvalidField) as caught:
        release_policy.normalize(policy)
    assert caught.value.field == field
