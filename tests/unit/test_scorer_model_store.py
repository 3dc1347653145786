"""The scorer's model store: verification, replay refusal, hot swap, release."""

from __future__ import annotations

import pytest

from services.common.errors import PoisonMessage, Reason
from services.scorer.model_store import ModelStore

pytestmark = pytest.mark.unit


def record(name, version, model_id, signed=True):
    return {
        "content": {"name": name, "version": version, "model_id": model_id},
        "key_id": "k",
        "signature": b"ok" if signed else b"",
    }


def verify(rec):
    if rec["signature"] != b"ok":
        raise PoisonMessage(Reason.BAD_SIGNATURE, "signature does not verify")
    return rec["content"]


class Loaded:
    def __init__(self, content):
        self.model_id = content["model_id"]


def deployment(revision, champion, challengers=()):
    return {
        "name": "credit",
        "revision": revision,
        "champion": {"model_id": champion},
        "challengers": [{"model": {"model_id": c}, "weight": 0.0} for c in challengers],
        "mode": "shadow",
    }


def test_unsigned_and_replayed_models_are_rejected_and_counted():
    store = ModelStore(verify, Loaded)
    assert store.on_model(record("m", 1, "a", signed=False)) == "rejected:bad_signature"
    assert store.on_model(record("m", 2, "b")) == "accepted"
    assert store.on_model(record("m", 2, "b")) == "duplicate"
    assert store.on_model(record("m", 1, "a")) == "rejected:replayed"
    assert store.rejected == {"bad_signature": 1, "replayed": 1}


def test_only_models_a_deployment_references_are_served_and_swaps_are_atomic():
    store = ModelStore(verify, Loaded)
    for v, mid in ((1, "a"), (2, "b"), (3, "c")):
        store.on_model(record("m", v, mid))
    assert store.snapshot().models == {}
    assert store.on_deployment(deployment(1, "a")) == "applied"
    before = store.snapshot()
    assert set(before.models) == {"a"}
    assert store.on_deployment(deployment(2, "b", ["c"])) == "applied"
    after = store.snapshot()
    assert set(after.models) == {"b", "c"}  # "a" released
    assert set(before.models) == {"a"}  # an old snapshot is never mutated
    assert store.on_deployment(deployment(1, "a")) == "stale"
    assert store.snapshot() is after


def test_a_deployment_naming_an_unknown_or_unloadable_model_is_not_applied():
    def failing_load(content):
        raise RuntimeError("onnxruntime says no")

    store = ModelStore(verify, failing_load)
    store.on_model(record("m", 1, "a"))
    assert store.on_deployment(deployment(1, "zzz")) == "pending"  # held until "zzz" arrives
    assert store.on_deployment(deployment(2, "a")) == "rejected:unsafe_model"
    assert store.snapshot().deployments == {}
