"""The release controller on the registry's real view (real Redis, no broker needed): a newer
version goes to shadow, is promoted or retired on paired evidence, a worse new champion is
rolled back by the guard, an owner-approval policy waits for the owner, and every decision is a
governance request with its evidence in the payload.

Drift reports go in through the registry's ingest, as the follower hands them over; the
publisher keeps the governance records it is given (the Kafka path is test_registry_kafka's).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from services.common import signing
from services.common.model_verifier import ModelVerifier
from services.common.topics import TopicNamer
from services.registry.governance import Governor
from services.registry.ingest import Ingest
from services.registry.release_controller import CONTROLLER, ReleaseController
from services.registry.roles import Principal, Role
from services.registry.view import RegistryView
from tests.integration.test_registry_governance import KeptRecords
from tests.model_factory import credit_content, keypair, published
from tests.registry_support import drift_report

pytestmark = pytest.mark.integration

OWNER = Principal("ana", Role.OWNER)
WINDOW = 60_000


class Env:
    """A registry view, a governor on a clock the test moves, and the controller."""

    def __init__(self, redis_client, prefix: str, tmp_path) -> None:
        self.view = RegistryView(redis_client, prefix)
        self.key = keypair(tmp_path / "keys")
        self.namer = TopicNamer(prefix)
        self.ingest = Ingest(
            self.view, ModelVerifier(signing.load_public_keys(tmp_path / "keys")), self.namer
        )
        self.models = [self._publish(v) for v in (1, 2)]
        self.now = int(time.time() * 1000)  # the models were created just before
        self.kept = KeptRecords()
        self.governor = Governor(self.view, self.kept, clock=lambda: self.now)
        self.decisions: list[str] = []
        self.controller = ReleaseController(self.view, self.governor, self.decisions.append)

    def _publish(self, version: int) -> dict[str, Any]:
        content = {**credit_content(estimator="rf" if version > 1 else "hgb"), "version": version}
        self.ingest(self.namer.models, published(content, self.key))
        return content

    def deploy(self, release: dict[str, Any] | None, version: int = 1, **setup: Any) -> None:
        body = {
            "action": "set_champion",
            "model": {"name": "credit", "version": version},
            "reason": "first deployment",
            "setup": {"release": release, **setup},
        }
        rid = self.governor.request("credit", body, Principal("ed", Role.EDITOR))["request_id"]
        self.governor.approve(rid, OWNER)

    def windows(self, n: int, champion: int, accuracy: float, challenger: dict | None = None):
        """`n` windows of 200 labels each from now on, the clock moved past them."""
        for _ in range(n):
            report = drift_report(self.models[champion - 1]["model_id"]) | {
                "window_start": self.now + 1,
                "window_end": self.now + WINDOW,
                "labels_joined": 200,
                "metrics": {"accuracy": accuracy},
            }
            if challenger is not None:
                report["challengers"] = [challenger]
            self.ingest(self.namer.drift, report)
            self.now += WINDOW + 1

    def challenger(self, version: int, champion_only: int, challenger_only: int) -> dict:
        return {
            "model_id": self.models[version - 1]["model_id"],
            "model_version": version,
            "metrics": {"accuracy": 0.9},
            "paired": {
                "n": 200,
                "champion_only": champion_only,
                "challenger_only": challenger_only,
                "diff_sum": 0.0,
                "diff_sq_sum": 0.0,
            },
        }

    def tick(self) -> list[str]:
        self.now += 1000
        return self.controller.tick()

    def deployment(self) -> dict[str, Any]:
        return self.view.deployment("credit")

    def requests(self) -> list[dict[str, Any]]:
        """The controller's requests, oldest first."""
        rows = self.view.requests("credit")
        return [r for r in reversed(rows) if r["requested_by"] == CONTROLLER.name]


@pytest.fixture()
def env(redis_client, prefix, tmp_path):
    e = Env(redis_client, prefix, tmp_path)
    yield e
    e.view.clear()


AUTO = {"approval": "auto", "min_windows": 3, "min_labels": 500, "margin": 0.02}


def test_auto_policy_shadows_then_promotes_on_paired_evidence_and_says_why(env):
    env.deploy(AUTO)
    (said,) = env.tick()
    assert "shadow (add_challenger), approved" in said
    d = env.deployment()
    assert [c["model"]["version"] for c in d["challengers"]] == [2]
    assert d["champion"]["version"] == 1
    assert env.tick() == [], "nothing to judge before the evidence is in"

    better = env.challenger(2, champion_only=4, challenger_only=30)  # +0.13 per window
    env.windows(2, champion=1, accuracy=0.8, challenger=better)
    assert env.tick() == [], "two windows are fewer than min_windows"
    env.windows(1, champion=1, accuracy=0.8, challenger=better)
    (said,) = env.tick()
    assert "promote (set_champion), approved" in said
    d = env.deployment()
    assert d["champion"]["version"] == 2 and d["challengers"] == []

    shadow, promote = env.requests()
    assert [r["change"]["action"] for r in (shadow, promote)] == ["add_challenger", "set_champion"]
    assert promote["decision"]["actor"] == "release-policy"
    evidence = promote["change"]["evidence"]
    assert evidence["decision"] == "promote" and evidence["windows"] == 3
    assert evidence["labels"] == 600 and evidence["p_value"] < 1e-6
    assert evidence["difference"] == pytest.approx((90 - 12) / 600)
    assert "McNemar" in promote["reason"]
    assert env.tick() == [], "decided: nothing more to do"


def test_a_challenger_no_better_is_retired_and_the_champion_keeps_serving(env):
    env.deploy(AUTO)
    env.tick()
    worse = env.challenger(2, champion_only=20, challenger_only=10)
    env.windows(3, champion=1, accuracy=0.9, challenger=worse)
    (said,) = env.tick()
    assert "retire (remove_challenger), approved" in said
    d = env.deployment()
    assert d["champion"]["version"] == 1 and d["challengers"] == []
    retire = env.requests()[-1]
    assert "not better by the margin" in retire["reason"]
    assert retire["change"]["evidence"]["difference"] == pytest.approx(-30 / 600)
    assert env.tick() == [], "a retired version is not shadowed again"


def test_an_owner_approval_policy_waits_for_the_owner(env):
    env.deploy({**AUTO, "approval": "owner"})
    (said,) = env.tick()
    assert "pending" in said
    assert env.tick() == [], "nothing more while its request waits"
    (shadow,) = env.requests()
    env.governor.approve(shadow["request_id"], OWNER, "go ahead")
    env.windows(3, champion=1, accuracy=0.8, challenger=env.challenger(2, 4, 30))
    (said,) = env.tick()
    assert "promote (set_champion), pending" in said
    assert env.deployment()["champion"]["version"] == 1, "not before the owner approves"
    env.governor.approve(env.requests()[-1]["request_id"], OWNER, "evidence is clear")
    assert env.deployment()["champion"]["version"] == 2


def test_the_rollback_guard_restores_the_previous_champion_once(env):
    env.deploy(AUTO)
    env.windows(3, champion=1, accuracy=0.85)  # v1's record before any challenger
    env.tick()
    env.windows(3, champion=1, accuracy=0.85, challenger=env.challenger(2, 4, 30))
    env.tick()
    assert env.deployment()["champion"]["version"] == 2
    env.windows(2, champion=2, accuracy=0.70)
    assert env.tick() == [], "fewer windows than rollback_windows after the swap"
    env.windows(1, champion=2, accuracy=0.70)
    (said,) = env.tick()
    assert "rollback (rollback), approved" in said
    assert env.deployment()["champion"]["version"] == 1
    rollback = env.requests()[-1]
    assert rollback["change"]["evidence"]["before"] == pytest.approx(0.85)
    assert rollback["change"]["evidence"]["after"] == pytest.approx(0.70)
    # The rollback restored the revision before the swap, v2 in shadow: it is not promoted
    # again, it is retired; then nothing more happens.
    (said,) = env.tick()
    assert "retire (remove_challenger)" in said and "promoted once already" in said
    assert env.tick() == [] and env.tick() == []
    assert env.deployment()["challengers"] == []
    actions = [r["change"]["action"] for r in env.requests()]
    assert actions == ["add_challenger", "set_champion", "rollback", "remove_challenger"]


def test_a_new_champion_that_holds_up_is_kept(env):
    env.deploy(AUTO)
    env.windows(3, champion=1, accuracy=0.80)
    env.tick()
    env.windows(3, champion=1, accuracy=0.80, challenger=env.challenger(2, 4, 30))
    env.tick()
    env.windows(5, champion=2, accuracy=0.93)
    assert env.tick() == [] and env.deployment()["champion"]["version"] == 2


def test_replace_makes_the_newer_version_champion_at_once(env):
    env.deploy({"approval": "auto", "action": "replace", "rollback_windows": 0})
    (said,) = env.tick()
    assert "replace (set_champion), approved" in said
    assert env.deployment()["champion"]["version"] == 2


def test_no_policy_or_an_external_deployment_is_left_alone(env):
    env.deploy(None)
    assert env.tick() == []
    body = {"action": "configure", "setup": {"release": AUTO, "external": True}, "reason": "x"}
    rid = env.governor.request("credit", body, Principal("ed", Role.EDITOR))["request_id"]
    env.governor.approve(rid, OWNER)
    assert env.deployment()["release"]["approval"] == "auto"
    assert env.tick() == [], "streamops does not serve an external deployment's models"
    assert not [e for e in env.view.audit("credit") if e["actor"] == CONTROLLER.name]
    assert all(json.loads(e["payload"]).get("evidence") is None for e in env.view.audit("credit"))


def test_labels_and_a_schedule_ask_the_trainer_for_a_new_version(env):
    env.deploy({**AUTO, "retrain_after_labels": 500, "retrain_every_seconds": 3600}, version=2)
    assert env.tick() == [], "v2 is the newest version: nothing to shadow, no labels yet"
    env.windows(2, champion=2, accuracy=0.9)
    assert env.tick() == [], "400 labels are fewer than 500"
    env.windows(1, champion=2, accuracy=0.9)
    (said,) = env.tick()
    assert "retrain, asked" in said and "600 labelled events" in said
    (request,) = [r for t, _k, _n, r in env.kept.records if t == "retrain"]
    assert request["deployment"] == "credit" and request["requested_by"] == CONTROLLER.name
    (event,) = [e for e in env.view.audit("credit") if e["action"] == "retrain"]
    assert event["request_id"] == request["request_id"]
    assert json.loads(event["payload"])["trigger"] == "labels"
    assert env.tick() == [], "labels count again from the retrain asked"
    env.now += 3600 * 1000
    (said,) = env.tick()
    assert "schedule" in said
    assert [json.loads(e["payload"])["trigger"] for e in env.view.audit("credit")
            if e["action"] == "retrain"] == ["schedule", "labels"]  # fmt: skip
    assert env.tick() == []


def test_the_trainers_answers_enter_the_audit_trail_once(env):
    env.deploy(None)
    outcome = {
        "outcome_id": "o-1",
        "request_id": "r-1",
        "deployment": "credit",
        "outcome": "failed",
        "detail": "KafkaException: broker down (3 attempts)",
        "model_id": None,
        "version": None,
        "attempts": 3,
        "at": env.now,
    }
    env.ingest(env.namer.retrain_outcomes, outcome)
    (said,) = env.tick()
    assert "retrain failed: KafkaException" in said
    env.ingest(env.namer.retrain_outcomes, outcome)  # replayed
    env.ingest(env.namer.retrain_outcomes, {**outcome, "outcome_id": "o-2"})  # answered twice
    assert env.tick() == []
    again = ReleaseController(env.view, env.governor)  # a restarted registry
    assert again.tick() == []
    (event,) = [e for e in env.view.audit("credit") if e["action"] == "retrain_outcome"]
    assert (event["actor"], event["role"], event["request_id"]) == ("trainer", "system", "r-1")
    assert json.loads(event["payload"])["attempts"] == 3
    governance = [r for t, _k, _n, r in env.kept.records if t == "governance"]
    assert sum(r["action"] == "retrain_outcome" for r in governance) == 1
