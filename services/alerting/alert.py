"""An alert: the labelled, fingerprinted form of a ThresholdBreach that grouping works on.

Labels are `alertname` (`<kind>:<metric>`), `deployment`, `kind`, `severity`, `metric`, `feature`
(when the breach has one) and the breach's own labels; the built-in ones win a clash so a breach
label can never move an alert to another deployment. The fingerprint is Alertmanager's: FNV-1a 64
over the sorted label pairs, as 16 hex digits, so the same breach firing again is the same alert.
It is taken over the identity labels only: `severity` is the alert's current level (a threshold
escalating from warning to critical, or resolving from either, is the same alert), and the drift
service's `transition` label (firing, escalated, ...) becomes an annotation.

Alerting raises alerts of its own, of kind `retrain`, from the trainer's retrain outcomes
(`retrain_outcome.py`): they come here as the same breach-shaped input, with the `summary` and
`description` annotations given and no model (`model_id` empty) when the retrain made none.
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from collections.abc import Mapping
from typing import Any

from services.alerting.matchers import LABEL_NAME
from services.common.errors import PoisonMessage, Reason

# The kinds of a ThresholdBreach (the drift service's).
KINDS = frozenset({"data_drift", "prediction_drift", "accuracy", "data_quality", "health"})
RETRAIN = "retrain"  # the kind of alerting's own alerts about retrains; never a breach's
ALERT_KINDS = KINDS | {RETRAIN}
SEVERITIES = frozenset({"warning", "critical"})
STATUSES = frozenset({"firing", "resolved"})
MAX_LABELS = 32
# The latest time an alert can say (9999-12-31T23:59:59.999Z, in ms): webhooks carry times as
# RFC 3339, which has four-digit years; a later one cannot be rendered, and a group holding such
# an alert would fail every flush.
MAX_TIME_MS = 253_402_300_799_999
MAX_LABEL_VALUE = 1024

STATE_LABELS = frozenset({"severity"})  # labels that describe the alert's state, not identity
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF  # never valid UTF-8, so "a"+"bc" and "ab"+"c" hash differently


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint: FNV-1a 64 of sorted name/value pairs, 16 hex."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), labels[name].encode()):
            for byte in chunk + bytes([_SEPARATOR]):
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert instance; times are epoch seconds, `ends_at` is None while firing."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: str
    starts_at: float
    ends_at: float | None
    generator_url: str
    streamops: dict[str, Any]

    @property
    def firing(self) -> bool:
        """True while the condition holds."""
        return self.status == "firing"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, for grouping state kept in Redis (label maps copied shallowly)."""
        return {
            **self.__dict__,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "streamops": dict(self.streamops),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of `to_dict`."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def alert_from_breach(
    breach: Mapping[str, Any], *, dashboard_url: str = "", generator_url: str = ""
) -> Alert:
    """The alert for one ThresholdBreach or breach-shaped input; PoisonMessage if malformed."""
    _check(breach)
    labels = {str(k): str(v) for k, v in (breach.get("labels") or {}).items()}
    transition = labels.pop("transition", None)
    labels.update(
        alertname=f"{breach['kind']}:{breach['metric']}",
        deployment=breach["deployment"],
        kind=breach["kind"],
        severity=breach["severity"],
        metric=breach["metric"],
    )
    labels.pop("feature", None)
    if breach.get("feature"):
        labels["feature"] = breach["feature"]
    observed_s = breach["observed_at"] / 1000.0
    firing = breach["status"] == "firing"
    on = f" on {breach['feature']}" if breach.get("feature") else ""
    annotations = {
        "summary": breach.get("summary")
        or f"{breach['kind']} {breach['metric']}{on} for {breach['deployment']}",
        "description": breach.get("description")
        or (
            f"{breach['metric']}{on} is {breach['value']:.6g} against threshold "
            f"{breach['threshold']:.6g} ({breach['severity']}) for model "
            f"{breach['model_id']} version {breach['model_version']}"
        ),
    }
    if transition:
        annotations["transition"] = transition
    dashboard = ""
    if dashboard_url:
        quoted = urllib.parse.quote(breach["deployment"], safe="")
        dashboard = f"{dashboard_url.rstrip('/')}/deployments/{quoted}"
    return Alert(
        fingerprint=fingerprint({k: v for k, v in labels.items() if k not in STATE_LABELS}),
        labels=labels,
        annotations=annotations,
        status=breach["status"],
        starts_at=observed_s,
        ends_at=None if firing else observed_s,
        generator_url=generator_url,
        streamops={
            "breach_id": breach["breach_id"],
            "deployment": breach["deployment"],
            "model_id": breach["model_id"],
            "model_version": breach["model_version"],
            "window_start": breach["window_start"],
            "window_end": breach["window_end"],
            "value": breach["value"],
            "threshold": breach["threshold"],
            "observed_at": breach["observed_at"],
            "dashboard": dashboard,
        },
    )


def _check(breach: Mapping[str, Any]) -> None:
    """Raise PoisonMessage naming the first way `breach` breaks the breach-shaped contract."""
    strings = ("breach_id", "deployment", "kind", "metric", "severity", "status", "model_id")
    for key in strings:
        value = breach.get(key)
        # A retrain that failed or was refused made no model.
        may_be_empty = key == "model_id" and breach.get("kind") == RETRAIN
        if not isinstance(value, str) or not (value or may_be_empty):
            raise PoisonMessage(Reason.WRONG_TYPE, f"{key} must be a non-empty string")
    for key in ("summary", "description"):
        if breach.get(key) is not None and not isinstance(breach[key], str):
            raise PoisonMessage(Reason.WRONG_TYPE, f"{key} must be a string or null")
    for key, allowed in (("kind", ALERT_KINDS), ("severity", SEVERITIES), ("status", STATUSES)):
        if breach[key] not in allowed:
            raise PoisonMessage(
                Reason.WRONG_TYPE, f"{key} {breach[key]!r} not in {sorted(allowed)}"
            )
    if breach.get("feature") is not None and not isinstance(breach["feature"], str):
        raise PoisonMessage(Reason.WRONG_TYPE, "feature must be a string or null")
    for key in ("value", "threshold", "observed_at", "window_start", "window_end"):
        v = breach.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise PoisonMessage(Reason.WRONG_TYPE, f"{key} must be a number")
        if not math.isfinite(v):
            raise PoisonMessage(Reason.NON_FINITE, f"{key} is {v}")
    if not 0 <= breach["observed_at"] <= MAX_TIME_MS:
        raise PoisonMessage(
            Reason.OUT_OF_RANGE,
            f"observed_at {breach['observed_at']} is not a time (ms since 1970)",
        )
    if isinstance(breach.get("model_version"), bool) or not isinstance(
        breach.get("model_version"), int | str
    ):
        raise PoisonMessage(Reason.WRONG_TYPE, "model_version must be an int or string")
    labels = breach.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise PoisonMessage(Reason.WRONG_TYPE, "labels must be a map")
    if len(labels) > MAX_LABELS:
        raise PoisonMessage(Reason.OVERSIZE, f"{len(labels)} labels, at most {MAX_LABELS}")
    for name, value in labels.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise PoisonMessage(Reason.WRONG_TYPE, f"invalid label name {name!r}")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            raise PoisonMessage(Reason.WRONG_TYPE, f"label {name} must be a short string")
