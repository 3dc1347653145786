"""The audit trail is append-only (real Redis): the same event again changes nothing; an event
reusing an id with other content, a second decision of a request and a second request under the
same id are refused (PoisonMessage, which the follower dead-letters), and the trail keeps what
it had."""

from __future__ import annotations

import pytest

from services.common.errors import PoisonMessage, Reason
from services.registry.view import RegistryView
from tests.registry_support import governance_request

pytestmark = pytest.mark.integration


@pytest.fixture()
def view(redis_client, prefix):
    v = RegistryView(redis_client, prefix)
    yield v
    v.clear()


def _decision(request: dict, event_id: str, action: str, actor: str) -> dict:
    return {**request, "event_id": event_id, "action": action, "actor": actor, "role": "owner",
            "reason": f"{action} by {actor}", "at": request["at"] + 1}  # fmt: skip


def test_an_audit_event_is_never_rewritten_and_a_request_is_decided_once(view):
    request = governance_request("credit", "ed", {"model_id": "m" * 64}, {})
    rid = request["request_id"]
    view.apply_governance(request)
    view.apply_governance(dict(request))  # a replay: nothing changes, nothing refused
    with pytest.raises(PoisonMessage) as caught:
        view.apply_governance({**request, "reason": "forged: approved by everyone"})
    assert caught.value.reason is Reason.REWRITE
    with pytest.raises(PoisonMessage):  # another event claiming to be request r1
        view.apply_governance({**request, "event_id": "other", "actor": "mallory"})

    view.apply_governance(_decision(request, "d1", "approve", "ana"))
    with pytest.raises(PoisonMessage) as caught:
        view.apply_governance(_decision(request, "d2", "reject", "mallory"))
    assert "decision already" in str(caught.value)

    found = view.request(rid)
    assert found["status"] == "approved" and found["decision"]["actor"] == "ana"
    assert found["reason"] == request["reason"] and found["requested_by"] == request["actor"]
    assert sorted(e["event_id"] for e in view.audit("credit")) == sorted(
        [request["event_id"], "d1"]
    )


def test_the_registry_and_its_follower_applying_the_same_decision_at_once_both_succeed(
    view, redis_client
):
    """The registry applies its own approval while its follower applies it from the topic. One
    may find no event yet and then the decision slot already holding this very event (the
    other's transaction ran in between): that is the same event, not a second decision. A CI run
    once dead-lettered the registry's own approval this way."""
    request = governance_request("credit", "ed", {"model_id": "m" * 64}, {})
    approve = _decision(request, "d1", "approve", "ana")
    view.apply_governance(request)
    view.apply_governance(approve)
    redis_client.delete(view._k("event", "d1"))  # as the second thread saw it: no event yet
    view.apply_governance(approve)  # ... and the slot naming d1: applied, not refused
    assert view.request(request["request_id"])["decision"]["event_id"] == "d1"
