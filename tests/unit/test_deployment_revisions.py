"""The revision rule, and how the scorer and drift put signatures and revisions before use."""

from __future__ import annotations

import doctest

import pytest
from prometheus_client import CollectorRegistry

from services.common import deployment_revisions, signing
from services.common.deployment_revisions import RevisionGate
from services.common.deployment_verifier import DeploymentVerifier
from services.common.errors import PoisonMessage, Reason
from services.common.model_verifier import ModelVerifier
from services.common.topics import TopicNamer
from services.drift.control import ControlIntake
from services.drift.reference import ReferenceBook
from services.scorer.app import ScorerMetrics, _apply_control
from tests.drift_support import content, deployment, model_record, numeric_baseline
from tests.signing_support import session_keys, signed_deployment

pytestmark = pytest.mark.unit


def refusal(gate: RevisionGate, name: str, revision: int) -> PoisonMessage:
    with pytest.raises(PoisonMessage) as info:
        gate.admit({"name": name, "revision": revision}, lambda r: None)
    return info.value


def test_doctests():
    assert doctest.testmod(deployment_revisions).failed == 0


def test_the_first_record_is_taken_at_any_revision_then_only_plus_one():
    gate, applied = RevisionGate(), []
    for name, revision in (("a", 41), ("b", 1), ("a", 42), ("b", 2), ("a", 43)):
        gate.admit({"name": name, "revision": revision}, applied.append)
    assert [(r["name"], r["revision"]) for r in applied] == [
        ("a", 41), ("b", 1), ("a", 42), ("b", 2), ("a", 43),
    ]  # fmt: skip
    assert (gate.current("a"), gate.current("b"), gate.current("c")) == (43, 2, None)


@pytest.mark.parametrize(
    ("revision", "reason"),
    [
        (43, Reason.REPLAYED_REVISION),  # the one in force again
        (1, Reason.REPLAYED_REVISION),  # an older one
        (45, Reason.REVISION_GAP),  # skips 44
        (2**62, Reason.REVISION_GAP),  # would freeze every later change
    ],
)
def test_replays_and_gaps_are_refused_and_the_revision_in_force_stays(revision, reason):
    gate = RevisionGate()
    gate.admit({"name": "a", "revision": 43}, lambda r: None)
    exc = refusal(gate, "a", revision)
    assert exc.reason is reason and "r43 stays" in exc.detail
    assert gate.current("a") == 43
    gate.admit({"name": "a", "revision": 44}, lambda r: None)  # the next one still applies
    assert gate.current("a") == 44


def test_a_gap_says_that_a_restart_reads_the_compacted_topic_afresh():
    gate = RevisionGate()
    gate.admit({"name": "a", "revision": 1}, lambda r: None)
    detail = refusal(gate, "a", 3).detail
    assert "restart it: it reads the compacted topic afresh" in detail and len(detail) < 300


def test_a_failed_apply_leaves_the_gate_as_it_was_so_a_retry_passes():
    gate = RevisionGate()
    gate.admit({"name": "a", "revision": 1}, lambda r: None)

    def boom(record):
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        gate.admit({"name": "a", "revision": 2}, boom)
    assert gate.current("a") == 1
    gate.admit({"name": "a", "revision": 2}, lambda r: None)
    assert gate.current("a") == 2


class StubStore:
    """The model store's deployment side: records what it was offered."""

    def __init__(self) -> None:
        self.offered: list[dict] = []

    def on_deployment(self, record):
        self.offered.append(record)
        return "applied"

    def pending(self):
        return {}


def test_the_scorer_verifies_then_checks_the_revision_before_the_store_sees_a_deployment():
    keys = session_keys()
    namer, store = TopicNamer("t."), StubStore()
    verify = DeploymentVerifier.from_dir(keys.deployments_dir)
    apply = _apply_control(store, namer, ScorerMetrics(CollectorRegistry()), verify, RevisionGate())
    c = content("a" * 64, 1, [numeric_baseline("x")])
    with pytest.raises(PoisonMessage, match="bad_signature"):
        apply(namer.deployments, deployment("d", c, revision=2**62))  # unsigned
    apply(namer.deployments, signed_deployment(deployment("d", c, revision=1)))
    with pytest.raises(PoisonMessage, match="revision_gap"):
        apply(namer.deployments, signed_deployment(deployment("d", c, revision=3)))
    apply(namer.deployments, signed_deployment(deployment("d", c, revision=2)))
    assert [r["revision"] for r in store.offered] == [1, 2]
    assert all("signature" not in r for r in store.offered)


def test_drift_uses_a_baseline_only_from_a_verified_model_and_a_verified_deployment():
    keys = session_keys()
    namer, book = TopicNamer("t."), ReferenceBook()
    intake = ControlIntake(
        namer.models,
        ModelVerifier(signing.load_public_keys(keys.models_dir)),
        DeploymentVerifier.from_dir(keys.deployments_dir),
        book.apply,
    )
    good = content("a" * 64, 1, [numeric_baseline("x")])
    tampered = model_record(content("b" * 64, 2, [numeric_baseline("x")]))
    tampered["content"]["baseline"]["features"][0]["mean"] = 9.0  # after signing
    intake(namer.models, model_record(good))
    with pytest.raises(PoisonMessage, match="bad_signature"):
        intake(namer.models, tampered)
    assert book.model("b" * 64) is None
    with pytest.raises(PoisonMessage, match="bad_signature"):
        intake(namer.deployments, deployment("d", good))  # unsigned
    assert book.get("d") is None
    intake(namer.deployments, signed_deployment(deployment("d", good, revision=7)))
    assert book.get("d").model_id == "a" * 64 and book.get("d").revision == 7
    with pytest.raises(PoisonMessage, match="replayed_revision"):
        intake(namer.deployments, signed_deployment(deployment("d", good, revision=6)))
    assert intake.revisions.current("d") == 7
