"""The pure pieces together: breach -> alert -> route -> group -> payload -> signed -> verified."""

import base64
import json

import pytest

from services.alerting.alert import alert_from_breach
from services.alerting.grouping import Grouper
from services.alerting.payload import encode, render
from services.alerting.routing import parse_config
from services.alerting.silences import Silences
from services.alerting.webhook_signing import Verifier, sign

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()
CONFIG = f"""\
receivers:
  - {{name: ops, url: "https://hooks.example.com/a", secret: {SECRET}}}
  - {{name: pager, url: "https://pager.example.com/b", secret: {SECRET}}}
route:
  receiver: ops
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - {{matchers: ['severity="critical"'], receiver: pager, continue: true}}
"""
T0 = 1_700_000_000.0


def breach(t: float, severity: str = "critical", status: str = "firing") -> dict:
    return {
        "breach_id": f"b{t}", "deployment": "fraud", "kind": "accuracy", "metric": "auc",
        "feature": None, "severity": severity, "status": status, "value": 0.6,
        "threshold": 0.7, "window_start": int(t * 1000) - 60_000, "window_end": int(t * 1000),
        "model_id": "sha256:m", "model_version": 2, "observed_at": int(t * 1000), "labels": {},
    }  # fmt: skip


def test_breach_to_verified_webhook() -> None:
    cfg = parse_config(CONFIG)
    groupers = {r.key: Grouper(r) for r in cfg.routes()}
    silences = Silences()
    for i in range(50):
        a = alert_from_breach(breach(T0 + i / 10), dashboard_url="http://dash")
        for route in cfg.match(a.labels):
            groupers[route.key].ingest(a, T0 + i / 10)
    sent = [n for g in groupers.values() for n in g.due(T0 + 5, silences)]
    assert sorted(n.receiver for n in sent) == ["pager"]
    (note,) = sent
    body = encode(render(note, external_url="http://alerting"))
    receiver = cfg.receivers[note.receiver]
    headers = sign([s.reveal() for s in receiver.secrets], note.id, int(T0 + 5), body)
    assert Verifier([SECRET]).verify(headers, body, now=T0 + 6) == note.id
    payload = json.loads(body)
    assert (
        payload["receiver"] == "pager" and payload["alerts"][0]["streamops"]["model_version"] == 2
    )
    # Restart: state through JSON, then the resolution goes out exactly once, to the same group.
    state = {k: json.loads(json.dumps(g.state())) for k, g in groupers.items()}
    groupers = {r.key: Grouper.from_state(r, state[r.key]) for r in cfg.routes()}
    resolved = alert_from_breach(breach(T0 + 30, status="resolved"))
    for route in cfg.match(resolved.labels):
        groupers[route.key].ingest(resolved, T0 + 30)
    later = [n for t in range(6, 400) for g in groupers.values() for n in g.due(T0 + t, silences)]
    assert [(n.receiver, n.status) for n in later] == [("pager", "resolved")]
    assert later[0].id != note.id
