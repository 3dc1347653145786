"""Registry governance and reads through the HTTP API, on the real Redis (no broker needed).

The publisher here keeps the records it was asked to write (the Kafka path is covered by
test_registry_kafka.py); the view, guardrails, roles and API are the real ones.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from services.common.settings import Secret
from services.common.topics import TopicNamer
from services.registry.api import ApiMetrics, create_app
from services.registry.governance import Governor
from services.registry.ingest import Ingest
from services.registry.roles import TokenTable
from services.registry.view import RegistryView
from tests.model_factory import credit_content, keypair, published

pytestmark = pytest.mark.integration

TOKENS = Secret(
    "ana:owner:ana-token-16chars,bo:owner:bo-token-16chars,"
    "ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars"
)
ANA, BO, ED, VI = (
    {"Authorization": f"Bearer {n}-token-16chars"} for n in ("ana", "bo", "ed", "vi")
)


class KeptRecords:
    """A publisher that keeps what it is given, in order (and can be told to fail)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, str, dict[str, Any]]] = []

    def publish(self, records: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        for _topic, _key, name, record in records:
            serde.decode(serde.encode(name, record), expected=name)  # proves they are valid
        self.records.extend(records)


@pytest.fixture()
def env(redis_client, prefix, tmp_path):
    view = RegistryView(redis_client, prefix)
    key = keypair(tmp_path / "keys")
    namer = TopicNamer(prefix)
    ingest = Ingest(view, ModelVerifier(signing.load_public_keys(tmp_path / "keys")), namer)
    kept = KeptRecords()
    ticks = itertools.count(1_700_000_000_000, 1000)  # one second per step: times are distinct
    app = create_app(
        view,
        Governor(view, kept, clock=lambda: next(ticks)),
        TokenTable.parse(TOKENS),
        False,
        ApiMetrics(CollectorRegistry()),
    )
    yield {
        "view": view,
        "key": key,
        "ingest": ingest,
        "namer": namer,
        "kept": kept,
        "client": TestClient(app),
    }
    view.clear()


def _models(env) -> tuple[dict, dict]:
    v1 = credit_content()
    v2 = {**credit_content(estimator="rf"), "version": 2, "parent_id": v1["model_id"]}
    for content in (v1, v2):
        env["ingest"](env["namer"].models, published(content, env["key"]))
    return v1, v2


def _request(client, headers, body, deployment="credit"):
    return client.post(f"/deployments/{deployment}/requests", json=body, headers=headers)


def test_reads_need_a_token_and_show_models_with_lineage_and_compare(env):
    client = env["client"]
    v1, v2 = _models(env)
    refused = client.get("/models")
    assert refused.status_code == 401 and "Bearer" in refused.json()["message"]
    listed = client.get("/models", headers=VI).json()
    assert listed == [{"name": "credit", "versions": [1, 2], "latest": listed[0]["latest"]}]
    one = client.get("/models/credit/versions/1", headers=VI).json()
    assert one["model_id"] == v1["model_id"] and "onnx" not in one
    assert one["onnx_size"] == len(v1["onnx"]) and one["lineage"]["metrics"]["roc_auc"] > 0.5
    graph = client.get(f"/lineage/{v2['model_id']}", headers=VI).json()
    kinds = {(e["kind"], e["source"], e["target"]) for e in graph["edges"]}
    assert ("parent", f"model:{v2['model_id']}", f"model:{v1['model_id']}") in kinds
    assert any(k == "trained_on" for k, _, _ in kinds)
    diff = client.get("/compare/credit?a=1&b=2", headers=VI).json()
    assert diff["estimator"] == {"a": "hgb", "b": "rf"}
    assert "n_estimators" in diff["params"]["added"] and "roc_auc" in diff["metrics"]
    versions = client.get("/models/credit", headers=VI).json()["versions"]
    assert [v["origin"].split(" ")[:2] for v in versions] == [["trained", "on"]] * 2
    missing = client.get("/models/credit/versions/9", headers=VI)
    assert missing.status_code == 404 and "GET /models" in missing.json()["message"]


def test_request_approve_by_another_owner_then_rollback(env):
    client, view = env["client"], env["view"]
    _models(env)
    body = {
        "action": "set_champion",
        "model": {"name": "credit", "version": 1},
        "reason": "first deployment",
    }
    assert _request(client, VI, body).status_code == 403  # viewers cannot request
    req = _request(client, ED, body)
    assert req.status_code == 201, req.text
    rid = req.json()["request_id"]
    assert req.json()["status"] == "pending" and view.deployment("credit") is None
    assert client.post(f"/requests/{rid}/approve", headers=ED).status_code == 403  # editor
    first = client.post(f"/requests/{rid}/approve", headers=BO, json={"reason": "ok"})
    assert first.status_code == 200 and first.json()["status"] == "approved"
    assert view.deployment("credit")["champion"]["version"] == 1
    again = client.post(f"/requests/{rid}/approve", headers=ANA)
    assert again.status_code == 409

    # ana asks to swap in v2 and cannot approve her own request
    swap = {
        "action": "set_champion",
        "model": {"name": "credit", "version": 2},
        "reason": "rf is better",
    }
    rid2 = _request(client, ANA, swap).json()["request_id"]
    own = client.post(f"/requests/{rid2}/approve", headers=ANA)
    assert own.status_code == 403 and "cannot approve" in own.json()["message"]
    assert client.post(f"/requests/{rid2}/approve", headers=BO).status_code == 200
    assert view.deployment("credit")["champion"]["version"] == 2
    t_v2 = view.deployment("credit")["updated_at"]

    rid3 = _request(client, ED, {"action": "rollback", "reason": "v2 misbehaves"}).json()
    assert client.post(f"/requests/{rid3['request_id']}/approve", headers=ANA).status_code == 200
    current = client.get("/deployments/credit", headers=VI).json()
    assert current["revision"] == 3 and current["champion"]["version"] == 1
    history = client.get("/deployments/credit/history", headers=VI).json()
    assert [h["champion"]["version"] for h in history] == [1, 2, 1]
    at = client.get(f"/deployments/credit/at?t={t_v2}", headers=VI).json()
    assert at["revision"] == 2 and at["champion"]["version"] == 2
    before = client.get(f"/deployments/credit/at?t={history[0]['updated_at'] - 1}", headers=VI)
    assert before.status_code == 404

    audit = client.get("/audit?deployment=credit", headers=VI).json()
    actions = sorted(e["action"] for e in audit)
    assert actions == ["approve"] * 3 + ["request"] * 3
    topics = [t for t, _k, _n, _r in env["kept"].records]
    assert topics.count("deployments") == 3 and topics.count("governance") == 6


def test_guardrail_names_the_mismatch(env):
    client = env["client"]
    v1, _ = _models(env)
    features = [f for f in v1["signature_in"]["features"] if f["name"] != "age"]
    features = [
        {**f, "kind": "categorical", "categories": ["a"]} if f["name"] == "salary" else f
        for f in features
    ]
    odd = published(
        v1,
        env["key"],
        version=3,
        onnx=v1["onnx"] + b"\x00",
        signature_in={"features": features},
        classes=["no", "yes"],
    )
    env["ingest"](env["namer"].models, odd)
    started = _request(
        client,
        ANA,
        {
            "action": "set_champion",
            "model": {"name": "credit", "version": 1},
            "reason": "start",
            "setup": {"policy": {"auto_approve": True}},
        },
    )
    assert started.json()["status"] == "approved", started.text
    refused = _request(
        client,
        ED,
        {
            "action": "add_challenger",
            "weight": 0.1,
            "reason": "try",
            "model": {"name": "credit", "version": 3},
        },
    )
    assert refused.status_code == 422, refused.text
    message = refused.json()["message"]
    assert "missing input features ['age']" in message
    assert "feature 'salary' is categorical, champion's is numeric" in message
    assert "classes" in message
    assert env["view"].deployment("credit")["challengers"] == []


def test_auto_approve_policy_and_reject(env):
    client, view = env["client"], env["view"]
    _models(env)
    body = {
        "action": "set_champion",
        "reason": "demo",
        "model": {"name": "credit", "version": 1},
        "setup": {"policy": {"auto_approve": True}, "mode": "ab"},
    }
    by_editor = _request(client, ED, body)
    assert by_editor.status_code == 403 and "only an owner" in by_editor.json()["message"]
    made = _request(client, ANA, body)
    assert made.json()["status"] == "approved", made.text
    assert made.json()["decision"]["actor"] == "policy"
    assert view.deployment("credit")["updated_by"] == "policy"
    added = _request(
        client,
        ED,
        {
            "action": "add_challenger",
            "reason": "a/b",
            "model": {"name": "credit", "version": 2},
            "weight": 0.2,
        },
    )
    assert added.json()["status"] == "approved"
    assert view.deployment("credit")["challengers"][0]["weight"] == 0.2

    # a deployment without the policy waits for an owner, and a rejection writes only an event
    _request(
        client,
        ED,
        {"action": "set_champion", "reason": "manual", "model": {"name": "credit", "version": 1}},
        deployment="manual",
    )
    pending = view.requests("manual")[0]
    assert pending["status"] == "pending"
    no_reason = client.post(f"/requests/{pending['request_id']}/reject", headers=BO, json={})
    assert no_reason.status_code == 422
    rejected = client.post(
        f"/requests/{pending['request_id']}/reject", headers=BO, json={"reason": "not now"}
    )
    assert rejected.json()["status"] == "rejected" and view.deployment("manual") is None
    event = rejected.json()["decision"]
    assert event["action"] == "reject" and json.loads(event["payload"])["action"] == "set_champion"


def test_rejected_records_are_listed_not_shown(env, tmp_path):
    client = env["client"]
    v1 = credit_content()
    good = published(v1, env["key"])
    tampered = {**good, "content": {**good["content"], "version": 7}}
    other_key = keypair(tmp_path / "other")
    unknown = published(v1, other_key)
    unsigned = {**good, "signature": b""}
    for record in (tampered, unknown, unsigned):
        env["ingest"](env["namer"].models, record)
    env["ingest"].on_poison(env["namer"].models, b"garbage", serde_poison())
    body = client.get("/rejected", headers=VI).json()
    assert body["count"] == 4 and body["by_reason"] == {"bad_signature": 3, "truncated": 1}
    details = sorted(r["detail"] for r in body["records"] if r["reason"] == "bad_signature")
    assert any("missing signature" in d for d in details)
    assert any("unknown key id" in d for d in details)
    assert any("does not match" in d for d in details)
    assert client.get("/models", headers=VI).json() == []
    env["ingest"](env["namer"].models, tampered)  # replayed: counted once
    assert client.get("/rejected", headers=VI).json()["count"] == 4


def serde_poison():
    from services.common.errors import PoisonMessage, Reason

    return PoisonMessage(Reason.TRUNCATED, "body ends early")


def _start(client, headers=ANA, **setup):
    body = {"action": "set_champion", "model": {"name": "credit", "version": 1}, "reason": "start"}
    made = _request(client, headers, {**body, "setup": setup} if setup else body)
    assert made.status_code == 201, made.text
    return made.json()


def _approved(client, answer):
    done = client.post(f"/requests/{answer['request_id']}/approve", headers=BO)
    assert done.status_code == 200, done.text
    return done.json()


def test_a_threshold_set_after_creation_takes_effect_once_approved(env):
    client, view = env["client"], env["view"]
    _models(env)
    _approved(client, _start(client))
    later = {
        "action": "configure",
        "reason": "watch age",
        "setup": {
            "thresholds": [{"metric": "psi", "feature": "age", "warning": 0.1, "critical": 0.2}]
        },
    }
    filed = _request(client, ED, later)
    assert filed.status_code == 201 and filed.json()["status"] == "pending", filed.text
    _approved(client, filed.json())
    (t,) = view.deployment("credit")["thresholds"]
    assert (t["metric"], t["feature"], t["direction"], t["hysteresis"]) == (
        "psi",
        "age",
        "above",
        0.0,
    )
    # configuration riding on another change applies with it
    swap = _request(
        client,
        ED,
        {
            "action": "add_challenger",
            "model": {"name": "credit", "version": 2},
            "weight": 0.5,
            "reason": "try rf",
            "setup": {"mode": "ab", "window_seconds": 30},
        },
    )
    _approved(client, swap.json())
    current = view.deployment("credit")
    assert (current["mode"], current["window_seconds"], len(current["thresholds"])) == ("ab", 30, 1)


def test_an_invalid_configuration_is_refused_when_requested_with_the_field_named(env):
    client, view = env["client"], env["view"]
    _models(env)
    _approved(client, _start(client))
    before = len(view.requests("credit"))
    cases = [
        (
            {"metric": "psii", "feature": "age", "warning": 0.1, "critical": 0.2},
            "thresholds[0].metric",
        ),
        (
            {
                "metric": "psi",
                "feature": "age",
                "warning": 0.1,
                "critical": 0.2,
                "direction": "sideways",
            },
            "thresholds[0].direction",
        ),
        (
            {"metric": "psi", "feature": "nope", "warning": 0.1, "critical": 0.2},
            "thresholds[0].feature",
        ),
    ]
    for threshold, field in cases:
        answer = _request(
            client, ED, {"action": "configure", "reason": "x", "setup": {"thresholds": [threshold]}}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field and field in answer.json()["message"]
    assert len(view.requests("credit")) == before  # nothing filed, nothing to approve


def test_a_threshold_without_hysteresis_or_direction_is_approved_with_the_metrics_defaults(env):
    client, view = env["client"], env["view"]
    _models(env)
    answer = _start(client, thresholds=[{"metric": "accuracy", "warning": 0.8, "critical": 0.7}])
    assert _approved(client, answer)["status"] == "approved"
    (t,) = view.deployment("credit")["thresholds"]
    assert (t["direction"], t["hysteresis"], t["feature"]) == ("below", 0.0, None)


def test_an_editor_cannot_switch_on_auto_approval_by_asking(env):
    client, view = env["client"], env["view"]
    _models(env)
    _approved(client, _start(client))
    ask = _request(
        client,
        ED,
        {"action": "configure", "reason": "faster", "setup": {"policy": {"auto_approve": True}}},
    )
    assert ask.json()["status"] == "pending", ask.text  # the policy in force decides
    assert view.deployment("credit")["policy"]["auto_approve"] is False


def test_apply_declares_the_whole_deployment_and_an_identical_apply_changes_nothing(env):
    client, view = env["client"], env["view"]
    _models(env)
    declared = {
        "action": "apply",
        "reason": "from deployment.yaml",
        "model": {"name": "credit", "version": 1},
        "challengers": [{"model": {"name": "credit", "version": 2}, "weight": 0.25}],
        "setup": {"mode": "ab", "thresholds": [{"metric": "psi", "warning": 0.1, "critical": 0.2}]},
    }
    _approved(client, _request(client, ED, declared).json())
    current = view.deployment("credit")
    assert current["mode"] == "ab" and current["challengers"][0]["weight"] == 0.25
    requests = len(view.requests("credit"))
    again = _request(client, ED, declared)
    assert again.status_code == 200 and again.json()["status"] == "unchanged", again.text
    assert len(view.requests("credit")) == requests
    fewer = {**declared, "challengers": [], "setup": {}}
    _approved(client, _request(client, ED, fewer).json())
    current = view.deployment("credit")
    assert (current["challengers"], current["thresholds"], current["mode"]) == ([], [], "shadow")
