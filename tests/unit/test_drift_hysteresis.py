"""Threshold state machine: one firing for a hovering value, one resolved for a clear drop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.common.errors import ConfigError
from services.drift.hysteresis import Threshold, ThresholdEvaluator, Transition

pytestmark = pytest.mark.unit

PSI_AGE = Threshold("psi", "age", warning=0.1, critical=0.25, hysteresis=0.03)
KEY = PSI_AGE.key


def run(ev: ThresholdEvaluator, key: tuple, series: list[float | None]) -> list[Transition]:
    """Feed a series of window values; return every transition."""
    return [t for v in series for t in ev.evaluate({key: v})]


def test_hovering_at_the_threshold_fires_once_and_does_not_flap() -> None:
    rng = np.random.default_rng(1)
    hovering = list(0.1 + rng.uniform(-0.025, 0.025, 200))
    transitions = run(ThresholdEvaluator([PSI_AGE]), KEY, [0.02, *hovering])
    assert [(t.kind, t.severity) for t in transitions] == [("firing", "warning")]
    assert transitions[0].threshold == 0.1


def test_clear_drop_resolves_exactly_once() -> None:
    ev = ThresholdEvaluator([PSI_AGE])
    transitions = run(ev, KEY, [0.05, 0.12, 0.11, 0.075, 0.06, 0.01, 0.02, 0.05])
    assert [t.kind for t in transitions] == ["firing", "resolved"]
    assert transitions[1].value == 0.06  # 0.075 is still within the band above 0.1 - 0.03
    assert transitions[1].severity is None
    assert ev.firing() == {}


def test_escalate_deescalate_and_direct_critical() -> None:
    ev = ThresholdEvaluator([PSI_AGE])
    got = run(ev, KEY, [0.12, 0.3, 0.23, 0.2, 0.26, 0.0])
    assert [(t.kind, t.severity) for t in got] == [
        ("firing", "warning"),
        ("escalated", "critical"),
        ("deescalated", "warning"),
        ("escalated", "critical"),
        ("resolved", None),
    ]
    direct = run(ThresholdEvaluator([PSI_AGE]), KEY, [0.5])
    assert [(t.kind, t.severity) for t in direct] == [("firing", "critical")]


def test_below_direction_for_p_values_and_accuracy() -> None:
    acc = Threshold("accuracy", None, warning=0.8, critical=0.7, hysteresis=0.02, direction="below")
    ev = ThresholdEvaluator([acc])
    got = run(ev, acc.key, [0.9, 0.79, 0.81, 0.69, 0.71, 0.73, 0.85])
    assert [(t.kind, t.severity) for t in got] == [
        ("firing", "warning"),
        ("escalated", "critical"),
        ("deescalated", "warning"),
        ("resolved", None),
    ]
    assert [t.value for t in got] == [0.79, 0.69, 0.73, 0.85]


def test_single_level_thresholds() -> None:
    only_critical = Threshold("ks_p", "x", critical=1e-6, direction="below")
    got = run(ThresholdEvaluator([only_critical]), only_critical.key, [0.5, 1e-9, 0.5])
    assert [(t.kind, t.severity) for t in got] == [("firing", "critical"), ("resolved", None)]


def test_none_values_and_unknown_keys_change_nothing() -> None:
    ev = ThresholdEvaluator([PSI_AGE])
    assert run(ev, KEY, [0.2, None, float("nan")])[0].kind == "firing"
    assert ev.evaluate({("psi", "other"): 9.0}) == []
    assert ev.firing() == {KEY: "warning"}


def test_state_round_trip_keeps_firing_levels() -> None:
    other = Threshold("js", None, warning=0.1, critical=0.2)
    ev = ThresholdEvaluator([PSI_AGE, other])
    ev.evaluate({KEY: 0.3, other.key: 0.15})
    restored = ThresholdEvaluator.from_state([PSI_AGE, other], json.loads(json.dumps(ev.state())))
    assert restored.firing() == {KEY: "critical", other.key: "warning"}
    assert [t.kind for t in restored.evaluate({KEY: 0.0, other.key: 0.15})] == ["resolved"]
    dropped = ThresholdEvaluator.from_state([other], ev.state())
    assert dropped.firing() == {other.key: "warning"}


def test_from_dict_and_validation() -> None:
    t = Threshold.from_dict(
        {"metric": "psi", "feature": "age", "warning": 0.1, "critical": 0.25, "hysteresis": 0.02}
    )
    assert t == Threshold("psi", "age", 0.1, 0.25, 0.02, "above")
    with pytest.raises(ConfigError, match="unknown keys"):
        Threshold.from_dict({"metric": "psi", "warning": 0.1, "severity": "high"})
    with pytest.raises(ConfigError, match="less severe"):
        Threshold("psi", warning=0.3, critical=0.2)
    with pytest.raises(ConfigError):
        Threshold("psi")
    with pytest.raises(ConfigError):
        Threshold("psi", warning=0.1, hysteresis=-1.0)
    with pytest.raises(ConfigError, match="twice"):
        ThresholdEvaluator([PSI_AGE, PSI_AGE])


def test_a_threshold_that_stays_firing_is_reported_as_continuing_each_window():
    ev = ThresholdEvaluator([PSI_AGE])
    kinds = []
    for value in (0.02, 0.12, 0.11, 0.3, 0.28, 0.01, 0.02):
        changed = ev.evaluate({KEY: value})
        kinds.append([t.kind for t in changed + ev.continuing({KEY: value}, changed)])
    assert kinds == [
        [], ["firing"], ["continuing"], ["escalated"], ["continuing"], ["resolved"], []
    ]  # fmt: skip
    assert ev.continuing({KEY: None}, []) == []  # no value this window: nothing to say
