"""The registry on the real broker and Redis when a request or a record is hostile.

One failed governance write never poisons the next (the transaction is always aborted, and a
record the schema refuses is the request's fault: 422, not 500); a followed record that always
fails to apply is retried, then dead-lettered with its bytes and coordinates, and the follower
keeps applying the records after it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.cli.__main__ import main as cli
from services.common import serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import Reason
from services.registry.app import Registry, redis_client
from services.registry.governance import Refused
from services.registry.view import RegistryView
from tests.kafka_support import make_topics, produce, read_all
from tests.model_factory import credit_content, keypair, published
from tests.registry_support import (
    BAD_THRESHOLD,
    TOKENS,
    eventually,
    governance_request,
    registry_settings,
)

pytestmark = pytest.mark.integration

ED, BO = ({"Authorization": f"Bearer {n}-token-16chars"} for n in ("ed", "bo"))


@pytest.fixture()
def hostile(kafka_bootstrap, settings, redis_password, prefix, tmp_path) -> Iterator[Any]:
    make_topics(
        kafka_bootstrap, prefix, ["models", "deployments", "governance", "drift", "deadletter"]
    )
    key = keypair(tmp_path / "keys")
    s = registry_settings(
        kafka_bootstrap, settings, redis_password, prefix, tmp_path / "keys", TOKENS
    )
    v1 = credit_content()
    produce(kafka_bootstrap, f"{prefix}models", [(b"credit", _model(v1, key))])
    yield s, v1
    RegistryView(redis_client(s), prefix).clear()


class DoomedIngest:
    """The registry's ingest, except that records of deployment `doomed` always raise."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.on_poison = real.on_poison
        self.calls: list[str] = []

    def __call__(self, topic: str, record: dict[str, Any]) -> None:
        if record.get("deployment") == "doomed":
            self.calls.append(record["event_id"])
            raise KeyError("a handler bug this record always hits")
        self.real(topic, record)


def _model(content: dict[str, Any], key: Any) -> bytes:
    return serde.encode("ModelPublished", published(content, key))


def _deployments(s: Any) -> list[dict[str, Any]]:
    rows = read_all(s.kafka_bootstrap, f"{s.topic_prefix}deployments", idle_s=0.5)
    return [serde.decode(v, expected="Deployment")[1] for _p, _o, _k, v in rows]


def test_a_failed_approval_does_not_poison_the_next_governance_write(hostile):
    s, v1 = hostile
    ref = {"model_name": "credit", "model_id": v1["model_id"], "version": 1}
    # A pending request an earlier registry accepted: a threshold with direction "sideways".
    legacy = governance_request("credit", "ed", ref, {"thresholds": [BAD_THRESHOLD]})
    produce(
        s.kafka_bootstrap,
        f"{s.topic_prefix}governance",
        [(b"credit", serde.encode("GovernanceEvent", legacy))],
    )
    registry = Registry(s).start()
    try:
        client = TestClient(registry.app)
        rid = legacy["request_id"]
        assert registry.view.request(rid)["status"] == "pending"

        failed = client.post(f"/requests/{rid}/approve", headers=BO, json={})
        assert failed.status_code == 422, failed.text
        assert failed.json()["error"] == "invalid" and "direction" in failed.json()["message"]

        # the same content is now refused when it is requested, before anything is written
        bad = {
            "action": "set_champion",
            "reason": "bad thresholds",
            "model": {"name": "credit", "version": 1},
            "setup": {"thresholds": [BAD_THRESHOLD]},
        }
        asked = client.post("/deployments/credit/requests", json=bad, headers=ED)
        assert asked.status_code == 422, asked.text
        assert asked.json()["field"] == "thresholds[0].direction"

        # the publisher itself: an unencodable record is refused before any transaction, and a
        # failure inside one (a key of the wrong type) aborts it
        with pytest.raises(Refused):
            registry.publisher.publish([("governance", "credit", "GovernanceEvent", {"at": 1})])
        event = governance_request("credit", "ed", ref, {})
        with pytest.raises(TypeError):
            registry.publisher.publish([("governance", 12345, "GovernanceEvent", event)])

        good = {
            "action": "set_champion",
            "reason": "start",
            "model": {"name": "credit", "version": 1},
        }
        made = client.post("/deployments/credit/requests", json=good, headers=ED)
        assert made.status_code == 201, made.text
        done = client.post(f"/requests/{made.json()['request_id']}/approve", headers=BO, json={})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "approved"
        revisions = eventually(lambda: _deployments(s), what="the revision on `deployments`")
        assert [(d["name"], d["revision"]) for d in revisions] == [("credit", 1)]
        assert revisions[0]["champion"]["model_id"] == v1["model_id"]
        # the aborted write left nothing committed on `governance`
        audit = read_all(s.kafka_bootstrap, f"{s.topic_prefix}governance", idle_s=0.5)
        actions = [serde.decode(v)[1]["action"] for *_, v in audit]
        assert actions == ["request", "request", "approve"], actions
        assert registry.view.request(rid)["status"] == "pending"  # nothing written by the 422
    finally:
        registry.close()


def test_a_record_that_always_fails_to_apply_is_dead_lettered_and_the_next_ones_apply(hostile):
    s, v1 = hostile
    bad = governance_request("doomed", "ed", None, {})
    after = [governance_request("credit", "ed", None, {}) for _ in range(3)]
    produce(
        s.kafka_bootstrap,
        f"{s.topic_prefix}governance",
        [(b"k", serde.encode("GovernanceEvent", e)) for e in (bad, *after)],
    )
    registry = Registry(s)
    doomed = DoomedIngest(registry.ingest)
    registry.ingest = doomed  # type: ignore[assignment]
    calls = doomed.calls
    registry.start()
    try:
        for event in after:
            assert registry.view.request(event["request_id"]) is not None
        assert registry.view.request(bad["request_id"]) is None
        assert len(calls) == 3  # retried, then given up on
        letters = eventually(
            lambda: read_all(s.kafka_bootstrap, f"{s.topic_prefix}deadletter", idle_s=0.5),
            what="the dead letter",
        )
        [(_p, _o, key, value)] = letters
        _, letter = serde.decode(value, expected="DeadLetter")
        assert letter["service"] == "registry" and letter["stage"] == "apply"
        assert letter["reason"] == "handler_failed" and "KeyError" in letter["error"]
        assert letter["source_topic"] == f"{s.topic_prefix}governance"
        assert (letter["source_offset"], letter["attempts"], key) == (0, 3, b"k")
        assert serde.decode(letter["original"])[1]["event_id"] == bad["event_id"]
        labels = {
            "service": "registry",
            "topic": f"{s.topic_prefix}governance",
            "reason": "handler_failed",
        }
        assert registry.metrics.get_sample_value("streamops_deadletter_total", labels) == 1

        # undecodable bytes on a followed topic are dead-lettered the same way, live
        produce(s.kafka_bootstrap, f"{s.topic_prefix}drift", [(b"x", b"\xc3\x01garbage")])
        letters = eventually(
            lambda: [
                r
                for r in read_all(s.kafka_bootstrap, f"{s.topic_prefix}deadletter", idle_s=0.5)
                if serde.decode(r[3])[1]["stage"] == "decode"
            ],
            what="the decode dead letter",
        )
        _, decode_letter = serde.decode(letters[0][3])
        assert decode_letter["original"] == b"\xc3\x01garbage"
        assert decode_letter["source_topic"] == f"{s.topic_prefix}drift"
        assert json.loads(json.dumps(registry.health()))["ok"] is True
    finally:
        registry.close()


def test_the_deadletters_command_groups_the_real_topic_by_source_record(
    kafka_bootstrap, prefix, monkeypatch
):
    namer = make_topics(kafka_bootstrap, prefix, ["deadletter"])
    writers = {
        svc: DeadLetterWriter(namer.deadletter, svc, serde.encode) for svc in ("scorer", "drift")
    }
    letters = [
        writers[svc].record(namer.events, p, o, b"k", b"{", "decode", Reason.INVALID_JSON, "x")
        for p, o in ((0, 11), (1, 11))
        for svc in ("scorer", "drift")
    ]
    produce(
        kafka_bootstrap,
        namer.deadletter,
        [(b"k", serde.encode("DeadLetter", r)) for r in letters] + [(b"k", b"not a letter")],
    )
    monkeypatch.setenv("STREAMOPS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["deadletters", "--prefix", prefix]) == 0
    lines = out.getvalue().splitlines()
    assert sorted(lines[:2]) == [
        f"{namer.events}[0]@11  refused by drift (invalid_json), scorer (invalid_json)",
        f"{namer.events}[1]@11  refused by drift (invalid_json), scorer (invalid_json)",
    ]
    assert lines[2] == (
        "total: 2 bad source records, refused by drift and scorer (invalid_json); 4 dead letters"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["deadletters", "--prefix", prefix, "--since", "1h", "--json"]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 2 and {r["letters"] for r in rows} == {2}
