"""Version and parent resolution from the records on the models and deployments topics."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.errors import PoisonMessage, Reason
from services.trainer.versions import ModelLedger

pytestmark = pytest.mark.unit


def _verify(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("signature") != b"ok":
        raise PoisonMessage(Reason.BAD_SIGNATURE, "bad signature")
    return record["content"]


def model(name: str, version: int, mid: str, signed: bool = True, at: int = 0) -> dict[str, Any]:
    return {
        "content": {"model_id": mid, "name": name, "version": version, "created_at": at},
        "signature": b"ok" if signed else b"forged",
    }


def deployment(name: str, champion: tuple[str, str], revision: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "revision": revision,
        "champion": {"model_name": champion[0], "model_id": champion[1], "version": 1},
    }


def ledger_of(*records: dict[str, Any]) -> ModelLedger:
    ledger = ModelLedger(_verify)
    for r in records:
        if "content" in r:
            ledger.add_model(r)
        else:
            ledger.add_deployment(r)
    return ledger


def test_first_version_has_no_parent() -> None:
    plan = ledger_of(model("other", 4, "o4")).plan("credit")
    assert (plan.version, plan.parent_id) == (1, None)


def test_next_version_follows_the_highest_and_parent_is_the_previous() -> None:
    ledger = ledger_of(model("credit", 1, "c1"), model("credit", 3, "c3"), model("credit", 2, "c2"))
    plan = ledger.plan("credit")
    assert (plan.version, plan.parent_id) == (4, "c3")
    assert plan.parent_source == "previous version 3"


def test_parent_is_the_champion_of_the_deployment_of_the_same_name() -> None:
    ledger = ledger_of(
        model("credit", 1, "c1"), model("credit", 2, "c2"), deployment("credit", ("credit", "c1"))
    )
    plan = ledger.plan("credit")
    assert (plan.version, plan.parent_id) == (3, "c1")
    assert plan.champion is not None and plan.champion["model_id"] == "c1"


def test_explicit_deployment_wins_even_with_another_model_name() -> None:
    ledger = ledger_of(model("credit", 1, "c1"), deployment("loans", ("credit", "c1")))
    assert ledger.plan("credit-v2", "loans").parent_id == "c1"
    # Without the deployment named, a deployment of another name is not consulted.
    assert ledger.plan("credit-v2").parent_id is None


def test_same_name_deployment_serving_another_model_is_ignored() -> None:
    ledger = ledger_of(model("credit", 1, "c1"), deployment("credit", ("legacy", "l9")))
    assert ledger.plan("credit").parent_id == "c1"


def test_highest_deployment_revision_wins_whatever_the_order() -> None:
    ledger = ledger_of(
        model("credit", 1, "c1"),
        model("credit", 2, "c2"),
        deployment("credit", ("credit", "c2"), revision=2),
        deployment("credit", ("credit", "c1"), revision=1),
    )
    assert ledger.plan("credit").parent_id == "c2"


def test_unverified_record_bumps_the_version_but_is_never_a_parent() -> None:
    ledger = ledger_of(model("credit", 1, "c1"), model("credit", 2, "evil", signed=False))
    plan = ledger.plan("credit")
    assert (plan.version, plan.parent_id) == (3, "c1")
    assert ledger.rejected == 1
    assert ledger.content("evil") is None


def test_note_published_moves_the_next_version_before_the_topic_echoes_it() -> None:
    ledger = ledger_of(model("credit", 1, "c1", at=10))
    ledger.note_published({"model_id": "c2", "name": "credit", "version": 2, "created_at": 20})
    assert ledger.plan("credit").version == 3
    assert ledger.last_published_at("credit") == 20
    ledger.add_model(model("credit", 2, "c2", at=20))  # the echo changes nothing
    assert ledger.plan("credit").version == 3


def test_record_without_a_name_is_rejected() -> None:
    ledger = ModelLedger(_verify)
    assert ledger.add_model({"content": {"version": 1}}).startswith("rejected")
