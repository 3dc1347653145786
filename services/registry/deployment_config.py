"""A deployment's configuration, checked whole when a change is requested.

Thresholds, humility rules, the policy, the window, the label delay, the mode and `external` are
checked against the contract and against the champion they will monitor (its task, features and
classes), so an invalid value is refused at request time with the field named
(`thresholds[1].direction`) and never reaches an approval. `normalize` returns every entry with
all its fields, defaults filled (a threshold's direction defaults to the side of the level that
is bad for its metric).

>>> model = {"task": "classification", "classes": ["0", "1"],
...          "signature_in": {"features": [{"name": "age", "kind": "numeric"}]}}
>>> normalize({"thresholds": [{"metric": "psi", "feature": "age", "warning": 0.1,
...            "critical": 0.25}]}, model)["thresholds"][0]["direction"]
'above'
>>> try:
...     normalize({"thresholds": [{"metric": "psii", "warning": 1, "critical": 2}]}, model)
... except InvalidField as exc:
...     print(str(exc)[:66])
thresholds[0].metric: unknown metric 'psii' (did you mean psi?); k
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from services.common.monitored_metrics import DIRECTIONS, METRICS
from services.registry import release_policy
from services.registry.config_fields import InvalidField, choice, integer, keys, number

MODES = ("shadow", "ab")
FIELDS = (
    "mode",
    "thresholds",
    "humility",
    "policy",
    "window_seconds",
    "external",
    "label_delay_seconds",
    "release",
)
DEFAULT_POLICY = {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None}
HUMILITY_KINDS = ("uncertain", "outlier", "unseen_category")
HUMILITY_ACTIONS = ("flag", "override", "route")
THRESHOLD_KEYS = ("metric", "feature", "warning", "critical", "hysteresis", "direction")
HUMILITY_KEYS = ("kind", "feature", "low", "high", "margin", "action", "override_value")
MAX_WINDOW_S = 7 * 86_400
# Drift reads one Redis hash per half day of a deployment's label delay on every batch, and keeps
# every prediction that long: a week bounds both (docs/decisions.md, "Label delay").
MAX_LABEL_DELAY_S = 7 * 86_400
MAX_ENTRIES = 500
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidField(where, "must be a list")
    if len(value) > MAX_ENTRIES:
        raise InvalidField(where, f"{len(value)} entries; at most {MAX_ENTRIES}")
    return value


def _features(model: Mapping[str, Any] | None) -> dict[str, str] | None:
    if model is None:
        return None
    return {f["name"]: f["kind"] for f in model["signature_in"]["features"]}


def _feature(
    value: Any, where: str, features: dict[str, str] | None, kinds: tuple[str, ...]
) -> str | None:
    """A feature name the champion has, of one of `kinds`; None means every such feature."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidField(where, f"must be a feature name, not {value!r}"[:200])
    if features is None:
        return value
    if value not in features:
        known = ", ".join(sorted(features)[:20])
        raise InvalidField(where, f"the champion has no feature {value!r}; its features: {known}")
    if features[value] not in kinds:
        raise InvalidField(
            where, f"{value!r} is {features[value]}; this applies to {' or '.join(kinds)} features"
        )
    return value


def _metric(value: Any, where: str, task: str | None) -> str:
    if value not in METRICS:
        close = difflib.get_close_matches(str(value), list(METRICS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InvalidField(
            where, f"unknown metric {value!r}{hint}; known: {', '.join(METRICS)}"[:400]
        )
    wanted = METRICS[value].task
    if task is not None and wanted is not None and wanted != task:
        raise InvalidField(where, f"{value} is measured for {wanted}, the champion does {task}")
    return str(value)


def threshold(entry: Any, where: str, model: Mapping[str, Any] | None) -> dict[str, Any]:
    """One threshold with every field, checked; raises InvalidField."""
    t = keys(entry, where, THRESHOLD_KEYS)
    metric = _metric(t.get("metric"), f"{where}.metric", model and model["task"])
    spec = METRICS[metric]
    if spec.per_feature:
        feature = _feature(t.get("feature"), f"{where}.feature", _features(model), spec.kinds)
    elif t.get("feature") is not None:
        raise InvalidField(f"{where}.feature", f"{metric} is deployment-wide: leave feature out")
    else:
        feature = None
    for key in ("warning", "critical"):
        if key not in t:
            raise InvalidField(f"{where}.{key}", "missing: give the level as a number")
    warning = number(t["warning"], f"{where}.warning")
    critical = number(t["critical"], f"{where}.critical")
    direction = choice(t.get("direction", spec.direction), f"{where}.direction", DIRECTIONS)
    hysteresis = number(t.get("hysteresis", 0.0), f"{where}.hysteresis", low=0.0)
    if (critical < warning) if direction == "above" else (critical > warning):
        worse = "higher" if direction == "above" else "lower"
        raise InvalidField(
            f"{where}.critical",
            f"{critical} is less severe than warning {warning}: with direction {direction} "
            f"the critical level must be {worse} or equal",
        )
    return {
        "metric": metric,
        "feature": feature,
        "warning": warning,
        "critical": critical,
        "hysteresis": hysteresis,
        "direction": direction,
    }


def humility_rule(entry: Any, where: str, model: Mapping[str, Any] | None) -> dict[str, Any]:
    """One humility rule with every field, checked; raises InvalidField."""
    r = keys(entry, where, HUMILITY_KEYS)
    kind = choice(r.get("kind"), f"{where}.kind", HUMILITY_KINDS)
    action = choice(r.get("action", "flag"), f"{where}.action", HUMILITY_ACTIONS)
    task = model and model["task"]
    low = number(r.get("low", 0.0), f"{where}.low", low=0.0, high=1.0)
    high = number(r.get("high", 0.0), f"{where}.high", low=0.0, high=1.0)
    margin = number(r.get("margin", 0.0), f"{where}.margin", low=0.0)
    feature = None
    if kind == "uncertain":
        if task == "regression":
            raise InvalidField(f"{where}.kind", "uncertain needs class probabilities")
        if low > high:
            raise InvalidField(f"{where}.high", f"{high} is below low {low}")
        if r.get("feature") is not None:
            raise InvalidField(f"{where}.feature", "uncertain applies to the prediction")
    else:
        kinds = ("numeric",) if kind == "outlier" else ("categorical",)
        feature = _feature(r.get("feature"), f"{where}.feature", _features(model), kinds)
    value = r.get("override_value")
    if action == "override":
        if value is None:
            raise InvalidField(f"{where}.override_value", "an override needs the value to serve")
        classes = list(model["classes"]) if model else []
        if classes and str(value) not in classes:
            raise InvalidField(
                f"{where}.override_value", f"{value!r} is not a class; classes: {classes}"
            )
        if classes:
            value = str(value)
        elif task == "regression":
            value = number(value, f"{where}.override_value")
    elif value is not None:
        raise InvalidField(f"{where}.override_value", "only action override uses it")
    if isinstance(value, float | int) and not isinstance(value, bool):
        value = number(value, f"{where}.override_value")
    return {
        "kind": kind,
        "feature": feature,
        "low": low,
        "high": high,
        "margin": margin,
        "action": action,
        "override_value": value,
    }


def policy(value: Any, where: str = "policy") -> dict[str, Any]:
    """The policy fields given (a partial policy merges into the current one)."""
    p = keys(value, where, tuple(DEFAULT_POLICY))
    out: dict[str, Any] = {}
    if "auto_approve" in p:
        if not isinstance(p["auto_approve"], bool):
            raise InvalidField(f"{where}.auto_approve", "must be true or false")
        out["auto_approve"] = p["auto_approve"]
    if "retrain_after_windows" in p:
        out["retrain_after_windows"] = integer(
            p["retrain_after_windows"], f"{where}.retrain_after_windows", 1, 10_000
        )
    if "review_topic" in p:
        topic = p["review_topic"]
        if topic is not None and (not isinstance(topic, str) or not _TOPIC.fullmatch(topic)):
            raise InvalidField(
                f"{where}.review_topic", "must be a Kafka topic name ([A-Za-z0-9._-], 1-249)"
            )
        out["review_topic"] = topic
    return out


def normalize(setup: Mapping[str, Any], model: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration fields of `setup`, checked against the champion `model` (its
    ModelContent summary: task, classes, signature_in), with every entry complete."""
    keys(setup, "setup", FIELDS)
    out: dict[str, Any] = {}
    if "mode" in setup:
        out["mode"] = choice(setup["mode"], "mode", MODES)
    if "window_seconds" in setup:
        out["window_seconds"] = integer(setup["window_seconds"], "window_seconds", 1, MAX_WINDOW_S)
    if "label_delay_seconds" in setup:
        delay = setup["label_delay_seconds"]
        out["label_delay_seconds"] = (
            None if delay is None else integer(delay, "label_delay_seconds", 1, MAX_LABEL_DELAY_S)
        )
    if "release" in setup:
        out["release"] = release_policy.normalize(setup["release"])
    if "external" in setup:
        if not isinstance(setup["external"], bool):
            raise InvalidField("external", "must be true or false")
        out["external"] = setup["external"]
    if "policy" in setup:
        out["policy"] = policy(setup["policy"])
    if "thresholds" in setup:
        entries = _list(setup["thresholds"], "thresholds")
        out["thresholds"] = [threshold(t, f"thresholds[{i}]", model) for i, t in enumerate(entries)]
        seen: dict[tuple[str, str | None], int] = {}
        for i, t in enumerate(out["thresholds"]):
            key = (t["metric"], t["feature"])
            if key in seen:
                raise InvalidField(
                    f"thresholds[{i}]",
                    f"{t['metric']} of {t['feature'] or 'the deployment'} is already "
                    f"thresholds[{seen[key]}]",
                )
            seen[key] = i
    if "humility" in setup:
        entries = _list(setup["humility"], "humility")
        out["humility"] = [humility_rule(r, f"humility[{i}]", model) for i, r in enumerate(entries)]
    return out
