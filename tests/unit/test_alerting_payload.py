"""Alerts from breaches and the Alertmanager v4 webhook payload."""

import json
import math

import pytest

from services.alerting.alert import alert_from_breach, fingerprint
from services.alerting.grouping import Notification
from services.alerting.payload import encode, render, rfc3339
from services.common.errors import PoisonMessage, Reason

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def breach(**kw: object) -> dict:
    base = {
        "breach_id": "b1",
        "deployment": "fraud",
        "kind": "accuracy",
        "metric": "auc",
        "feature": None,
        "severity": "critical",
        "status": "firing",
        "value": 0.61,
        "threshold": 0.7,
        "window_start": 1_699_999_940_000,
        "window_end": 1_700_000_000_000,
        "model_id": "sha256:abc",
        "model_version": 3,
        "observed_at": 1_700_000_000_250,
        "labels": {"team": "risk"},
    }
    return base | kw


def test_fingerprint_is_alertmanagers_fnv1a_over_sorted_labels() -> None:
    # Test vectors of prometheus/common's LabelsToSignature, which Alertmanager uses.
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    vector = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint(vector) == f"{5799056148416392346:016x}"
    assert fingerprint(dict(reversed(vector.items()))) == fingerprint(vector)
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})
    assert len(fingerprint({"a": "b"})) == 16


def test_labels_from_breach() -> None:
    a = alert_from_breach(breach(feature="age", labels={"team": "risk", "deployment": "other"}))
    assert a.labels == {
        "alertname": "accuracy:auc",
        "deployment": "fraud",  # a breach label can never move the alert elsewhere
        "kind": "accuracy",
        "severity": "critical",
        "metric": "auc",
        "feature": "age",
        "team": "risk",
    }
    assert "feature" not in alert_from_breach(breach()).labels
    identity = {k: v for k, v in a.labels.items() if k != "severity"}
    assert a.fingerprint == fingerprint(identity)


def test_same_breach_again_has_the_same_fingerprint_and_a_different_one_does_not() -> None:
    one = alert_from_breach(breach(breach_id="x", value=0.5, observed_at=1))
    two = alert_from_breach(breach(breach_id="y", value=0.4, observed_at=2))
    assert one.fingerprint == two.fingerprint
    assert one.fingerprint != alert_from_breach(breach(feature="income")).fingerprint


def test_severity_and_transition_are_state_not_identity() -> None:
    """Drift escalates and resolves a threshold under changing severities and transitions."""
    fired = alert_from_breach(breach(severity="warning", labels={"transition": "firing"}))
    up = alert_from_breach(breach(severity="critical", labels={"transition": "escalated"}))
    gone = alert_from_breach(
        breach(severity="critical", status="resolved", labels={"transition": "resolved"})
    )
    assert fired.fingerprint == up.fingerprint == gone.fingerprint
    assert up.labels["severity"] == "critical" and "transition" not in up.labels
    assert up.annotations["transition"] == "escalated"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "vibes"}, Reason.WRONG_TYPE),
        ({"status": "maybe"}, Reason.WRONG_TYPE),
        ({"deployment": ""}, Reason.WRONG_TYPE),
        ({"value": "high"}, Reason.WRONG_TYPE),
        ({"value": True}, Reason.WRONG_TYPE),
        ({"value": math.nan}, Reason.NON_FINITE),
        ({"threshold": math.inf}, Reason.NON_FINITE),
        ({"labels": {"bad-name": "x"}}, Reason.WRONG_TYPE),
        ({"labels": {f"l{i}": "x" for i in range(40)}}, Reason.OVERSIZE),
        ({"feature": 3}, Reason.WRONG_TYPE),
    ],
)
def test_malformed_breach_is_poison(change: dict, reason: Reason) -> None:
    with pytest.raises(PoisonMessage) as info:
        alert_from_breach(breach(**change))
    assert info.value.reason == reason


def test_rfc3339() -> None:
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    assert rfc3339(T0 + 0.25) == "2023-11-14T22:13:20.250Z"


def note(*alerts: object, status: str = "firing") -> Notification:
    return Notification(
        id="msg_1",
        group_key='{}:{deployment="fraud"}',
        receiver="ops",
        group_labels={"deployment": "fraud"},
        status=status,
        alerts=tuple(alerts),  # type: ignore[arg-type]
        created_at=T0,
    )


def test_payload_is_alertmanager_v4_with_streamops_fields() -> None:
    firing = alert_from_breach(breach(feature="age"), dashboard_url="http://dash:8000/")
    resolved = alert_from_breach(
        breach(feature="income", status="resolved", severity="warning"), dashboard_url="http://d"
    )
    body = render(note(firing, resolved), external_url="http://alerting:9093")
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops"
    assert body["groupKey"] == '{}:{deployment="fraud"}' and body["truncatedAlerts"] == 0
    assert body["commonLabels"] == {
        "alertname": "accuracy:auc",
        "deployment": "fraud",
        "kind": "accuracy",
        "metric": "auc",
        "team": "risk",
    }
    first, second = body["alerts"]
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["startsAt"] == "2023-11-14T22:13:20.250Z"
    assert second["status"] == "resolved" and second["endsAt"] == "2023-11-14T22:13:20.250Z"
    assert set(first) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
        "streamops",
    }  # fmt: skip
    assert first["streamops"] == {
        "breach_id": "b1",
        "deployment": "fraud",
        "model_id": "sha256:abc",
        "model_version": 3,
        "window_start": 1_699_999_940_000,
        "window_end": 1_700_000_000_000,
        "value": 0.61,
        "threshold": 0.7,
        "observed_at": 1_700_000_000_250,
        "dashboard": "http://dash:8000/deployments/fraud",
    }
    assert "age" in first["annotations"]["summary"]


def test_truncation_counts_what_was_left_out() -> None:
    alerts = [alert_from_breach(breach(feature=f"f{i}")) for i in range(5)]
    body = render(note(*alerts), max_alerts=2)
    assert len(body["alerts"]) == 2 and body["truncatedAlerts"] == 3


def test_encode_is_compact_json_and_refuses_nan() -> None:
    body = render(note(alert_from_breach(breach())))
    raw = encode(body)
    assert json.loads(raw) == body and b": " not in raw
    with pytest.raises(ValueError):
        encode({"x": math.nan})
