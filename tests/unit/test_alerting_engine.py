"""The alerting engine: breaches to notifications and retrain requests, state across restarts."""

from __future__ import annotations

import base64
import json

import pytest

from services.alerting.engine import Engine
from services.alerting.routing import parse_config

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"e" * 32).decode()
CONFIG = f"""\
receivers:
  - {{name: ops, url: "https://hooks.example.com/a", secret: {SECRET}}}
route: {{receiver: ops, group_by: [deployment], group_wait: 0s, group_interval: 10s,
         repeat_interval: 1h}}
retrain: {{after_windows: 3, kinds: [data_drift]}}
"""
T0 = 1_700_000_000.0


def breach(window: int, status: str = "firing", deployment: str = "credit") -> dict:
    start = 1_000_000 + window * 60_000
    return {
        "breach_id": f"b{deployment}{window}{status}", "deployment": deployment,
        "kind": "data_drift", "metric": "psi", "feature": "income", "severity": "critical",
        "status": status, "value": 0.4, "threshold": 0.25, "window_start": start,
        "window_end": start + 60_000, "model_id": "sha256:m1", "model_version": 1,
        "observed_at": int(T0 * 1000) + window, "labels": {},
    }  # fmt: skip


def engine() -> Engine:
    return Engine(parse_config(CONFIG), dashboard_url="http://dash", retrain_timeout_s=600)


def test_a_breach_notifies_once_and_its_resolution_once() -> None:
    e = engine()
    e.on_breach(breach(1), T0)
    assert e.is_due(T0)
    (note,) = e.tick(T0)
    assert note.status == "firing" and note.receiver == "ops"
    e.on_breach(breach(1), T0 + 1)  # replayed after a crash
    e.on_breach(breach(2), T0 + 2)  # same alert, next window
    assert e.tick(T0 + 11) == []
    e.on_breach(breach(3, "resolved"), T0 + 12)
    assert [n.status for n in e.tick(T0 + 21)] == ["resolved"]
    assert e.tick(T0 + 100) == [] and e.groups() == []


def test_state_survives_a_restart_without_repeating_or_losing() -> None:
    e = engine()
    e.on_breach(breach(1), T0)
    e.tick(T0)
    e.on_breach(breach(2, deployment="fraud"), T0 + 1)  # pending, not yet flushed
    restored = engine()
    restored.restore(json.loads(json.dumps(e.state())))
    notes = restored.tick(T0 + 1)
    assert [n.group_labels for n in notes] == [{"deployment": "fraud"}]
    assert restored.tick(T0 + 30) == []


def test_unknown_state_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        engine().restore({**engine().state(), "version": 99})


def test_silenced_alerts_wait_and_acks_stop_repeats() -> None:
    e = engine()
    silence = e.silences.add(['deployment="credit"'], T0, T0 + 20, "me", "", T0)
    e.on_breach(breach(1), T0)
    assert e.tick(T0) == []
    assert [n.status for n in e.tick(silence.ends_at + 10)] == ["firing"]


def test_retrain_once_per_deployment_until_a_new_champion_or_the_timeout() -> None:
    e = engine()
    e.on_deployment({"name": "credit", "champion": {"model_id": "sha256:m1"}})
    got = [e.on_breach(breach(w), T0 + w) for w in (1, 2, 3, 4)]
    assert [g is not None for g in got] == [False, False, True, False]
    assert e.retrains_in_flight() == 1
    assert e.on_deployment({"name": "credit", "champion": {"model_id": "sha256:m2"}})
    assert e.retrains_in_flight() == 0
    again = [e.on_breach(breach(w), T0 + w) for w in (5, 6, 7)]
    assert again[-1] is not None and again[-1].window_start == breach(5)["window_start"]
    e.tick(T0 + 100)
    assert not e.is_due(T0 + 101)
    assert e.is_due(T0 + 7 + 600)  # nobody finished it: it times out
    e.tick(T0 + 7 + 600)
    assert e.retrains_in_flight() == 0


def test_an_escalated_alert_resolves_on_every_route_that_notified_it() -> None:
    config = parse_config(f"""\
receivers:
  - {{name: ops, url: "https://hooks.example.com/a", secret: {SECRET}}}
  - {{name: pager, url: "https://pager.example.com/p", secret: {SECRET}}}
route:
  receiver: ops
  group_by: [deployment]
  group_wait: 0s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - {{matchers: ['severity="critical"'], receiver: pager}}
""")
    e = Engine(config)
    warn = {**breach(1), "severity": "warning", "labels": {"transition": "firing"}}
    crit = {**breach(2), "severity": "critical", "labels": {"transition": "escalated"}}
    gone = {**breach(3, "resolved"), "severity": "critical", "labels": {"transition": "resolved"}}
    e.on_breach(warn, T0)
    first = e.tick(T0)
    e.on_breach(crit, T0 + 1)
    second = e.tick(T0 + 11)
    e.on_breach(gone, T0 + 12)
    third = e.tick(T0 + 30)
    assert [(n.receiver, n.status) for n in first + second] == [
        ("ops", "firing"),
        ("pager", "firing"),
    ]
    assert sorted((n.receiver, n.status) for n in third) == [
        ("ops", "resolved"),
        ("pager", "resolved"),
    ]
    assert e.groups() == []


def record(k: int, champion: str = "sha256:m1", release: dict | None = None) -> dict:
    """A Deployment record of `credit` (the parts alerting reads)."""
    return {
        "name": "credit",
        "revision": 1,
        "champion": {"model_name": "m", "model_id": champion, "version": 1},
        "policy": {"auto_approve": False, "retrain_after_windows": k, "review_topic": None},
        "release": release,
    }


def test_the_deployments_retrain_triggers_are_kept_and_survive_a_restart() -> None:
    e = engine()  # the config says 3 windows of data drift
    assert e.on_deployment(record(k=2))
    assert not e.on_deployment(record(k=2))  # nothing changed: nothing to save
    got = [e.on_breach(breach(w), T0 + w) for w in (1, 2)]
    assert got[0] is None and got[1] is not None and got[1].after_windows == 2
    assert e.on_deployment(record(k=1, release={"retrain_on": ["change_point"]}))  # same champion
    restored = engine()
    restored.restore(json.loads(json.dumps(e.state())))
    assert not restored.on_deployment(record(k=1, release={"retrain_on": ["change_point"]}))
    assert restored.on_deployment(record(k=1, champion="sha256:m2"))  # ends the retrain
    assert restored.retrains_in_flight() == 0
    (request,) = [r for w in (3, 4) if (r := restored.on_breach(breach(w), T0 + w))]
    assert request.window_start == breach(3)["window_start"] and request.windows == 1
