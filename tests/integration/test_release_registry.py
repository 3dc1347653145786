"""The release controller inside a running registry (real broker, real Redis, HTTP on a real
port): under an owner-approval release policy, a newly published version waits for an owner
before it shadows, then the promotion the paired evidence asks for waits too, and only the
owner's approval makes it champion on the `deployments` topic."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import serde, signing
from services.common.api_client import ApiClient
from services.common.settings import Secret
from tests.kafka_support import produce, read_all
from tests.model_factory import credit_content, published
from tests.registry_support import drift_report, eventually

pytestmark = pytest.mark.integration

RELEASE = {"approval": "owner", "min_windows": 2, "min_labels": 300, "margin": 0.02}


def _pending_of_controller(owner: ApiClient, action: str) -> str | None:
    for e in owner.get("/audit", deployment="credit"):
        if e["actor"] == "release-controller" and e["action"] == "request":
            request = owner.get(f"/requests/{e['request_id']}")
            if request["status"] == "pending" and request["change"]["action"] == action:
                return e["request_id"]
    return None


def _deployed(registry_url: str, release: dict) -> ApiClient:
    """credit v1 deployed with `release` (an editor asks, an owner approves); the owner."""
    owner = ApiClient(registry_url, Secret("bo-token-16chars"))
    editor = ApiClient(registry_url, Secret("ed-token-16chars"))
    eventually(lambda: owner.get("/models"), 20, "credit v1 listed")
    made = editor.post(
        "/deployments/credit/requests",
        {
            "action": "set_champion",
            "model": {"name": "credit", "version": 1},
            "reason": "first deployment",
            "setup": {"release": release},
        },
    )
    owner.post(f"/requests/{made['request_id']}/approve", {"reason": "go"})
    return owner


def test_an_owner_approval_policy_waits_for_the_owner_at_each_step(
    registry_url, kafka_bootstrap, prefix, tmp_path
):
    owner = _deployed(registry_url, RELEASE)
    v1 = owner.get("/deployments/credit")["champion"]

    (key_file,) = Path(tmp_path / "keys").glob("*.key")  # the key the registry trusts
    v2 = {**credit_content(estimator="logreg", rows=600, seed=1), "version": 2}
    record = published(v2, signing.load_private_key(key_file))
    produce(
        kafka_bootstrap, f"{prefix}models", [(b"credit", serde.encode("ModelPublished", record))]
    )

    shadow = eventually(lambda: _pending_of_controller(owner, "add_challenger"), 20, "shadow asked")
    assert owner.get("/deployments/credit")["challengers"] == [], "not before the owner approves"
    owner.post(f"/requests/{shadow}/approve", {"reason": "try it"})
    assert [c["model"]["version"] for c in owner.get("/deployments/credit")["challengers"]] == [2]

    # Drift's reports: v2 right where v1 is wrong on 40 of 200 events per window, the reverse
    # on 5; windows after the shadow began.
    start = owner.get("/deployments/credit")["updated_at"] + 1
    reports = []
    for k in range(2):
        report = drift_report(v1["model_id"]) | {
            "window_start": start + k * 60_000,
            "window_end": start + (k + 1) * 60_000,
            "labels_joined": 200,
        }
        report["challengers"] = [
            {
                "model_id": record["content"]["model_id"],
                "model_version": 2,
                "metrics": {"accuracy": 0.95},
                "paired": {"n": 200, "champion_only": 5, "challenger_only": 40,
                           "diff_sum": 0.0, "diff_sq_sum": 0.0},
            }
        ]  # fmt: skip
        reports.append((b"credit", serde.encode("DriftReport", report)))
    produce(kafka_bootstrap, f"{prefix}drift", reports)

    promote = eventually(lambda: _pending_of_controller(owner, "set_champion"), 20, "promotion")
    request = owner.get(f"/requests/{promote}")
    assert "McNemar" in request["reason"] and request["change"]["evidence"]["labels"] == 400
    assert owner.get("/deployments/credit")["champion"]["version"] == 1, "waits for the owner"
    owner.post(f"/requests/{promote}/approve", {"reason": "the evidence is clear"})
    assert owner.get("/deployments/credit")["champion"]["version"] == 2

    on_topic = [
        serde.decode(v, expected="Deployment")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, f"{prefix}deployments")
    ]
    newest = max(on_topic, key=lambda d: d["revision"])
    assert newest["champion"]["version"] == 2 and newest["challengers"] == []
    assert newest["updated_by"] == "bo"


def test_new_labels_ask_the_trainer_through_the_registrys_transaction(
    registry_url, kafka_bootstrap, prefix
):
    owner = _deployed(registry_url, {**RELEASE, "retrain_after_labels": 300})
    d = owner.get("/deployments/credit")
    reports = [
        drift_report(d["champion"]["model_id"])
        | {
            "window_start": d["updated_at"] + 1 + k * 60_000,
            "window_end": d["updated_at"] + (k + 1) * 60_000,
            "labels_joined": 200,
        }
        for k in range(2)
    ]
    produce(
        kafka_bootstrap,
        f"{prefix}drift",
        [(b"credit", serde.encode("DriftReport", r)) for r in reports],
    )

    def asked() -> list[dict]:
        return [
            serde.decode(v, expected="RetrainRequest")[1]
            for _p, _o, _k, v in read_all(kafka_bootstrap, f"{prefix}retrain")
        ]

    (request,) = eventually(asked, 20, "a RetrainRequest on the retrain topic")
    assert request["deployment"] == "credit" and request["requested_by"] == "release-controller"
    (event,) = [e for e in owner.get("/audit", deployment="credit") if e["action"] == "retrain"]
    assert event["request_id"] == request["request_id"] and "400 labelled" in event["reason"]
