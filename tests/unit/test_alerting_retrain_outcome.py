"""Retrain outcomes in alerting: they end the retrain in flight and fire or resolve alerts."""

from __future__ import annotations

import asyncio
import base64
import doctest
import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.alerting import retrain_outcome
from services.alerting.engine import Engine
from services.alerting.payload import encode, render
from services.alerting.routing import parse_config
from services.alerting.webhook_signing import Verifier, sign
from services.common import serde
from services.common.errors import PoisonMessage, Reason
from tests.alerting_support import FakeMessage, alerting_shell, write_config

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
CONFIG = f"""\
receivers:
  - {{name: ops, url: "https://hooks.example.com/a", secret: {SECRET}}}
  - {{name: pager, url: "https://pager.example.com/p", secret: {SECRET}}}
route:
  receiver: ops
  group_by: [deployment, kind]
  group_wait: 0s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - {{matchers: ['severity="critical"'], receiver: pager, continue: true}}
retrain: {{after_windows: 3, kinds: [data_drift]}}
"""
T0 = 1_700_000_000.0
OUTCOMES = "fz.retrain_outcomes"


def breach(window: int, deployment: str = "credit") -> dict:
    start = 1_000_000 + window * 60_000
    return {
        "breach_id": f"b{deployment}{window}", "deployment": deployment, "kind": "data_drift",
        "metric": "psi", "feature": "income", "severity": "warning", "status": "firing",
        "value": 0.4, "threshold": 0.25, "window_start": start, "window_end": start + 60_000,
        "model_id": "sha256:m1", "model_version": 1, "observed_at": int(T0 * 1000) + window,
        "labels": {},
    }  # fmt: skip


def outcome(kind: str, at_s: float, request_id: str = "rt_1", **kw: object) -> dict:
    """A RetrainOutcome the trainer sent at `at_s` (epoch seconds)."""
    published = kind == "published"
    return {
        "outcome_id": f"o-{kind}-{at_s}",
        "request_id": request_id,
        "deployment": "credit",
        "outcome": kind,
        "detail": {
            "failed": "gave up after 3 attempt(s): KafkaException: broker down",
            "refused": "data validation: label column is constant",
            "rejected": "gate: roc_auc 0.80 vs champion 0.90: fails",
            "published": "gate: roc_auc 0.93 vs champion 0.90: passes",
        }[kind],
        "model_id": "sha256:m2" if published else None,
        "version": 2 if published else None,
        "attempts": 3 if kind == "failed" else 1,
        "at": int(at_s * 1000),
    } | kw


def engine() -> Engine:
    return Engine(parse_config(CONFIG), dashboard_url="http://dash", retrain_timeout_s=600)


def in_flight_engine() -> tuple[Engine, str]:
    """An engine whose retrain policy asked for a retrain of credit at T0 + 3."""
    e = engine()
    got = [e.on_breach(breach(w), T0 + w) for w in (1, 2, 3)]
    assert got[-1] is not None and e.retrains_in_flight() == 1
    return e, got[-1].request_id


def retrain_alerts(e: Engine) -> list[dict]:
    return [
        a for g in e.groups() for a in g["alerts"] if a["labels"]["kind"] == retrain_outcome.RETRAIN
    ]


# -- the retrain in flight ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["failed", "refused", "rejected"])
def test_an_outcome_ends_the_retrain_in_flight_so_the_policy_asks_again(kind: str) -> None:
    e, request_id = in_flight_engine()
    assert e.on_retrain_outcome(outcome(kind, T0 + 10, request_id), T0 + 10)
    assert e.retrains_in_flight() == 0 and e.retrain.in_flight("credit") is None
    # No tick, no timeout: the next sustained breach asks again after a fresh run of K windows.
    again = [e.on_breach(breach(w), T0 + 10 + w) for w in (4, 5, 6)]
    assert [a is not None for a in again] == [False, False, True]
    assert again[-1].request_id != request_id and e.retrains_in_flight() == 1


def test_a_published_outcome_leaves_it_in_flight_until_the_new_champion() -> None:
    e, request_id = in_flight_engine()
    e.on_deployment({"name": "credit", "champion": {"model_id": "sha256:m1"}})
    assert e.on_retrain_outcome(outcome("published", T0 + 10, request_id), T0 + 10)
    assert e.retrain.in_flight("credit") == request_id  # v2 is a challenger, not yet promoted
    assert [e.on_breach(breach(w), T0 + 10 + w) for w in (4, 5, 6)] == [None, None, None]
    assert e.on_deployment({"name": "credit", "champion": {"model_id": "sha256:m2"}})
    assert e.retrains_in_flight() == 0


def test_an_answer_to_another_request_ends_it_when_sent_after_the_request() -> None:
    """The trainer counts a request made before its last training finished as answered."""
    e, _ = in_flight_engine()
    assert e.on_retrain_outcome(outcome("failed", T0 + 2, "rt_cli"), T0 + 4)
    assert e.retrains_in_flight() == 1  # answered before alerting asked: not its answer
    assert e.on_retrain_outcome(outcome("failed", T0 + 3, "rt_cli"), T0 + 4)
    assert e.retrains_in_flight() == 0  # at the request's millisecond: the trainer skips it


def test_an_outcome_of_another_deployment_ends_nothing() -> None:
    e, request_id = in_flight_engine()
    other = outcome("failed", T0 + 10, request_id, deployment="fraud")
    assert e.on_retrain_outcome(other, T0 + 10)
    assert e.retrain.in_flight("credit") == request_id


def test_a_replayed_outcome_changes_nothing() -> None:
    e, request_id = in_flight_engine()
    first = outcome("failed", T0 + 10, request_id)
    assert e.on_retrain_outcome(first, T0 + 10)
    e.tick(T0 + 10)
    before = json.dumps(e.state(), sort_keys=True)
    assert not e.on_retrain_outcome(first, T0 + 11)  # redelivered after a crash
    assert json.dumps(e.state(), sort_keys=True) == before and e.tick(T0 + 30) == []
    # A new request went out; the old outcome, replayed after a restart, does not end it.
    new = [e.on_breach(breach(w), T0 + 10 + w) for w in (4, 5, 6)][-1]
    assert new is not None
    restored = engine()
    restored.restore(json.loads(json.dumps(e.state())))
    assert not restored.on_retrain_outcome(first, T0 + 20)
    assert restored.retrain.in_flight("credit") == new.request_id


def test_state_saved_before_outcomes_were_read_still_restores() -> None:
    e, request_id = in_flight_engine()
    old = {k: v for k, v in e.state().items() if k != "outcome_at"}
    restored = engine()
    restored.restore(json.loads(json.dumps(old)))
    assert restored.on_retrain_outcome(outcome("failed", T0 + 10, request_id), T0 + 10)
    assert restored.retrains_in_flight() == 0


# -- the alert ----------------------------------------------------------------------------------


def test_a_failed_retrain_fires_a_critical_alert_with_the_detail_and_the_attempts() -> None:
    e = engine()
    e.on_retrain_outcome(outcome("failed", T0), T0)
    (note,) = e.tick(T0)
    assert note.receiver == "pager"  # routed by its severity, as a critical breach is
    (alert,) = note.alerts
    assert alert.firing and alert.starts_at == T0
    assert {k: alert.labels[k] for k in ("deployment", "kind", "metric", "severity")} == {
        "deployment": "credit",
        "kind": "retrain",
        "metric": "retrain_failed",
        "severity": "critical",
    }
    assert alert.annotations["summary"] == "retrain failed for credit"
    description = alert.annotations["description"]
    assert "after 3 attempt(s)" in description and "KafkaException: broker down" in description
    assert alert.streamops["dashboard"] == "http://dash/deployments/credit"


def test_a_refused_retrain_fires_a_warning() -> None:
    e = engine()
    e.on_retrain_outcome(outcome("refused", T0), T0)
    (note,) = e.tick(T0)  # not critical: ops only
    (alert,) = note.alerts
    assert (note.receiver, alert.labels["severity"], alert.labels["metric"]) == (
        "ops",
        "warning",
        "retrain_refused",
    )
    assert "label column is constant" in alert.annotations["description"]


def test_a_rejected_retrain_is_no_alert() -> None:
    e = engine()
    assert e.on_retrain_outcome(outcome("rejected", T0), T0)
    assert e.tick(T0) == [] and e.groups() == []


def test_a_published_retrain_resolves_the_firing_retrain_alerts() -> None:
    e = engine()
    e.on_retrain_outcome(outcome("refused", T0), T0)
    e.on_retrain_outcome(outcome("failed", T0 + 5), T0 + 5)
    assert {n.status for n in e.tick(T0 + 5)} == {"firing"}
    assert len(retrain_alerts(e)) == 2
    e.on_retrain_outcome(outcome("published", T0 + 20), T0 + 20)
    resolved = e.tick(T0 + 20)
    assert sorted((n.receiver, n.status, n.alerts[0].labels["metric"]) for n in resolved) == [
        ("ops", "resolved", "retrain_refused"),
        ("pager", "resolved", "retrain_failed"),
    ]
    assert e.groups() == [] and e.tick(T0 + 100) == []


def test_a_published_retrain_with_nothing_firing_notifies_nothing() -> None:
    e = engine()
    assert e.on_retrain_outcome(outcome("published", T0), T0)
    assert e.tick(T0) == [] and e.groups() == []


def test_the_same_failure_again_is_the_same_alert_and_does_not_notify_again() -> None:
    e = engine()
    e.on_retrain_outcome(outcome("failed", T0), T0)
    e.tick(T0)
    e.on_retrain_outcome(outcome("failed", T0 + 60, "rt_2"), T0 + 60)
    assert e.tick(T0 + 70) == [] and len(retrain_alerts(e)) == 1


def test_a_retrain_alert_is_a_signed_alertmanager_webhook() -> None:
    e = engine()
    e.on_retrain_outcome(outcome("failed", T0), T0)
    (note,) = e.tick(T0)
    body = encode(render(note, external_url="http://alerting"))
    headers = sign([SECRET], note.id, int(T0), body)
    assert Verifier([SECRET]).verify(headers, body, now=T0 + 1) == note.id
    (alert,) = json.loads(body)["alerts"]
    assert alert["labels"]["alertname"] == "retrain:retrain_failed"
    assert alert["streamops"]["breach_id"] == "o-failed-" + str(T0)
    assert alert["streamops"]["model_id"] == "" and alert["streamops"]["value"] == 3


# -- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"outcome": "maybe"}, Reason.WRONG_TYPE),
        ({"deployment": ""}, Reason.WRONG_TYPE),
        ({"request_id": ""}, Reason.WRONG_TYPE),
        ({"attempts": -1}, Reason.OUT_OF_RANGE),
        ({"at": 0}, Reason.OUT_OF_RANGE),
        ({"at": 2**62}, Reason.OUT_OF_RANGE),
        ({"at": int((T0 + 3600) * 1000)}, Reason.FUTURE_EVENT_TIME),
        ({"version": True}, Reason.WRONG_TYPE),
    ],
)
def test_a_malformed_outcome_is_poison_and_changes_nothing(change: dict, reason: Reason) -> None:
    e, request_id = in_flight_engine()
    before = json.dumps(e.state(), sort_keys=True)
    with pytest.raises(PoisonMessage) as info:
        e.on_retrain_outcome(outcome("failed", T0 + 10, request_id) | change, T0 + 10)
    assert info.value.reason == reason
    assert json.dumps(e.state(), sort_keys=True) == before


def test_a_breach_cannot_pose_as_a_retrain_alert() -> None:
    with pytest.raises(PoisonMessage, match="retrain"):
        engine().on_breach({**breach(1), "kind": "retrain", "status": "resolved"}, T0)


def test_docstring_examples() -> None:
    result = doctest.testmod(retrain_outcome)
    assert result.attempted > 0 and result.failed == 0


# -- the app's handler --------------------------------------------------------------------------


def shell(tmp_path: Path) -> tuple:
    config = write_config(tmp_path / "alerting.yaml", {"ops": "https://hooks.example.com/x"})
    return alerting_shell(config)


def counted(registry: CollectorRegistry, kind: str) -> float:
    value = registry.get_sample_value(
        "streamops_alerting_retrain_outcomes_total", {"outcome": kind}
    )
    return value or 0.0


def test_the_handler_queues_the_alert_and_counts_the_outcome(tmp_path: Path) -> None:
    service, sent = shell(tmp_path)
    value = serde.encode("RetrainOutcome", outcome("failed", time.time()))
    asyncio.run(service.handle_retrain_outcome(FakeMessage(OUTCOMES, value)))
    asyncio.run(service.handle_retrain_outcome(FakeMessage(OUTCOMES, value, offset=1)))  # replay
    entries = [json.loads(v) for name, v in sent if name == "Entry"]
    assert len(entries) == 1 and entries[0]["status"] == "firing"
    (alert,) = entries[0]["alerts"]
    assert alert["labels"]["metric"] == "retrain_failed"
    assert counted(service.registry, "failed") == 2  # both consumed, the replay changed nothing
    assert [n for n, _ in sent if n == "DeadLetter"] == []


def test_a_rejected_outcome_queues_nothing(tmp_path: Path) -> None:
    service, sent = shell(tmp_path)
    value = serde.encode("RetrainOutcome", outcome("rejected", time.time()))
    asyncio.run(service.handle_retrain_outcome(FakeMessage(OUTCOMES, value)))
    assert sent == [] and counted(service.registry, "rejected") == 1


@pytest.mark.parametrize(
    ("value", "stage", "reason"),
    [
        (b"not an outcome", "decode", "not_avro"),
        (None, "decode", "not_avro"),
        (serde.encode("ThresholdBreach", breach(1)), "decode", "wrong_type"),
        (serde.encode("RetrainOutcome", outcome("failed", T0, outcome="maybe")), "handle",
         "wrong_type"),
    ],
)  # fmt: skip
def test_a_malformed_outcome_message_is_dead_lettered(
    tmp_path: Path, value: bytes | None, stage: str, reason: str
) -> None:
    service, sent = shell(tmp_path)
    asyncio.run(service.handle_retrain_outcome(FakeMessage(OUTCOMES, value, offset=7)))
    letters = [serde.decode(v, expected="DeadLetter")[1] for n, v in sent if n == "DeadLetter"]
    assert [(x["stage"], x["reason"], x["source_offset"]) for x in letters] == [(stage, reason, 7)]
    assert letters[0]["original"] == (value or b"") and letters[0]["service"] == "alerting"
    assert [n for n, _ in sent if n == "Entry"] == []
    assert all(counted(service.registry, k) == 0 for k in retrain_outcome.OUTCOMES)


def test_an_engine_error_is_the_outcome_s_dead_letter_not_a_crash(tmp_path: Path) -> None:
    service, sent = shell(tmp_path)

    def broken(record: dict, now: float) -> bool:
        raise KeyError("an engine bug this outcome hits")

    service.engine.on_retrain_outcome = broken
    value = serde.encode("RetrainOutcome", outcome("failed", T0))
    asyncio.run(service.handle_retrain_outcome(FakeMessage(OUTCOMES, value, offset=3)))
    letters = [serde.decode(v, expected="DeadLetter")[1] for n, v in sent if n == "DeadLetter"]
    assert [(x["stage"], x["reason"]) for x in letters] == [("handle", "handler_failed")]
    assert "KeyError" in letters[0]["error"]
