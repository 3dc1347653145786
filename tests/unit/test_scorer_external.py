"""External deployments in the scorer (issue 25): the user's service answers their events.

A described model (no ONNX bytes) is accepted but never loaded and never counted as rejected; an
external deployment is applied at once, holds no session and waits for no model; its events are
skipped and counted, neither scored nor dead-lettered, and their offsets are committed; a
deployment switches from served to external and back.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from services.common import serde
from services.common.deployment_revisions import RevisionGate
from services.common.topics import TopicNamer
from services.scorer.app import ScorerMetrics, _apply_control
from services.scorer.inference import load_model
from services.scorer.model_store import ModelStore
from services.trainer.dataset import credit_rows
from tests.model_factory import credit_content, deployment
from tests.scorer_support import in_process_scorer
from tests.signing_support import session_verifier, signed_deployment

pytestmark = pytest.mark.unit


def model(name: str, version: int, model_id: str, onnx: bytes = b"onnx") -> dict:
    estimator = "hgb" if onnx else "external"
    content = {"name": name, "version": version, "model_id": model_id, "onnx": onnx,
               "estimator": estimator}  # fmt: skip
    return {"content": content}


def dep(revision: int, champion: str, external: bool = False, name: str = "fraud") -> dict:
    return {
        "name": name,
        "revision": revision,
        "updated_at": 1,
        "updated_by": "ann",
        "reason": "r",
        "champion": {"model_id": champion, "version": 1, "model_name": "m"},
        "challengers": [],
        "mode": "shadow",
        "humility": [],
        "thresholds": [],
        "policy": {"auto_approve": False, "retrain_after_windows": 3},
        "external": external,
    }


class Loader:
    """Counts sessions made; refuses to load empty bytes as onnxruntime would."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def __call__(self, content):
        assert content["onnx"], "a described model must never reach onnxruntime"
        self.loaded.append(content["model_id"])
        return content["model_id"]


def store() -> tuple[ModelStore, Loader]:
    load = Loader()
    return ModelStore(lambda record: record["content"], load), load


def test_a_described_model_is_accepted_never_loaded_never_rejected():
    s, load = store()
    assert s.on_model(model("fraud-ext", 1, "d1", onnx=b"")) == "accepted"
    assert s.on_deployment(dep(1, "d1", external=True)) == "applied"
    assert load.loaded == [] and s.snapshot().models == {} and s.rejected == {}
    assert s.snapshot().deployments["fraud"]["external"] is True


def test_an_external_deployment_waits_for_no_model():
    s, load = store()
    assert s.on_deployment(dep(1, "not-here-yet", external=True)) == "applied"
    assert s.pending() == {} and load.loaded == []


def test_a_served_deployment_naming_a_described_model_is_not_applied_nor_rejected():
    s, load = store()
    s.on_model(model("m", 1, "a"))
    s.on_model(model("fraud-ext", 1, "d1", onnx=b""))
    assert s.on_deployment(dep(1, "a")) == "applied"
    assert s.on_deployment(dep(2, "d1")) == "unservable"  # forgot external: true
    assert s.snapshot().deployments["fraud"]["revision"] == 1  # r1 keeps serving
    assert load.loaded == ["a"] and s.rejected == {}


def test_a_deployment_switches_from_served_to_external_and_back():
    s, load = store()
    s.on_model(model("m", 1, "a"))
    s.on_model(model("fraud-ext", 1, "d1", onnx=b""))
    assert s.on_deployment(dep(1, "a")) == "applied"
    assert set(s.snapshot().models) == {"a"}
    assert s.on_deployment(dep(2, "d1", external=True)) == "applied"
    assert s.snapshot().models == {}  # the session is released
    assert s.on_deployment(dep(3, "a")) == "applied"
    assert set(s.snapshot().models) == {"a"} and load.loaded == ["a", "a"]
    # Back to external while a served revision waits for its model: the held one is dropped.
    assert s.on_deployment(dep(4, "b")) == "pending"
    assert s.on_deployment(dep(5, "d1", external=True)) == "applied"
    assert s.pending() == {}
    s.on_model(model("m", 2, "b"))
    assert s.snapshot().deployments["fraud"]["revision"] == 5 and s.snapshot().models == {}


class RecordingConsumer:
    """Keeps the offsets the runner commits."""

    def __init__(self) -> None:
        self.committed: dict[tuple[str, int], int] = {}

    def commit(self, offsets=None, asynchronous=True) -> None:
        for tp in offsets or []:
            self.committed[(tp.topic, tp.partition)] = tp.offset


def _event(deployment: str, i: int, features: dict) -> bytes:
    return serde.encode(
        "FeatureEvent",
        {"association_id": f"{deployment}-{i}", "deployment": deployment,
         "event_time": 1_700_000_000_000 + i, "features": features, "attributes": {}},
    )  # fmt: skip


def test_events_of_an_external_deployment_are_skipped_not_dead_lettered():
    served = credit_content(1)
    s = ModelStore(lambda record: record["content"], load_model)
    s.on_model({"content": served})
    s.on_model(model("fraud-ext", 1, "d1", onnx=b""))
    assert s.on_deployment(deployment(served, name="credit")) == "applied"
    assert s.on_deployment(dep(1, "d1", external=True)) == "applied"
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry)
    scorer = in_process_scorer(s.snapshot)
    scorer.handler.external_skipped = metrics.skipped
    consumer = RecordingConsumer()
    scorer.runner.consumer = consumer
    rows = [x for x, _ in credit_rows(6, seed=2)]
    # The external deployment's events are not checked against any signature: even ones a
    # served model would refuse are the user's service's business.
    batch = [_event("credit", i, rows[i]) for i in range(3)]
    batch += [_event("fraud", i, rows[i]) for i in range(3, 6)] + [_event("fraud", 9, {"x": 1})]
    out = scorer.feed(batch)
    topics = [topic for topic, _key, _value in out]
    assert topics == [scorer.namer.predictions] * 3  # the served deployment's, nothing else
    answered = [serde.decode(v, expected="Prediction")[1]["deployment"] for _t, _k, v in out]
    assert answered == ["credit"] * 3
    assert scorer.handler.skipped == {"fraud": 4}
    skipped = {"deployment": "fraud"}
    assert registry.get_sample_value("streamops_scorer_external_skipped_total", skipped) == 4
    assert consumer.committed == {(scorer.namer.events, 0): 7}
    # A batch of nothing but external events: no output, offsets committed all the same.
    assert scorer.feed([_event("fraud", 10, rows[0]), _event("fraud", 11, rows[1])]) == []
    assert consumer.committed == {(scorer.namer.events, 0): 9}
    assert scorer.handler.skipped == {"fraud": 6}


def test_switching_to_external_stops_reporting_a_served_version():
    namer = TopicNamer("t.")
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry)
    s, _load = store()
    apply = _apply_control(s, namer, metrics, session_verifier(), RevisionGate())
    apply(namer.models, model("m", 3, "a"))
    apply(namer.models, model("fraud-ext", 1, "d1", onnx=b""))

    def serving():
        return registry.get_sample_value(
            "streamops_scorer_serving_version", {"deployment": "fraud"}
        )

    champion = {"model_id": "a", "version": 3, "model_name": "m"}
    apply(namer.deployments, signed_deployment({**dep(1, "a"), "champion": champion}))
    assert serving() == 3
    apply(namer.deployments, signed_deployment(dep(2, "d1", external=True)))
    assert serving() is None
    rejected = {"reason": "unsafe_model"}
    assert registry.get_sample_value("streamops_scorer_models_rejected_total", rejected) is None
