"""Deployments that arrive before their models are held, then applied (issue 27).

`models` and `deployments` are separate topics, so a scorer's replay can see a Deployment before
a model it names. Such a deployment used to be dropped for good, and that scorer then served a
different champion from the others.
"""

from __future__ import annotations

import itertools

import pytest

from services.scorer.model_store import ModelStore

pytestmark = pytest.mark.unit


def model(name: str, version: int, model_id: str) -> dict:
    return {"content": {"name": name, "version": version, "model_id": model_id}}


class Loaded:
    def __init__(self, content):
        self.model_id = content["model_id"]


def deployment(revision: int, champion: str, challengers=(), name: str = "credit") -> dict:
    return {
        "name": name,
        "revision": revision,
        "champion": {"model_id": champion},
        "challengers": [{"model": {"model_id": c}, "weight": 0.0} for c in challengers],
        "mode": "shadow",
    }


def store(resolved=None, load=Loaded) -> ModelStore:
    return ModelStore(lambda record: record["content"], load, resolved)


def served(s: ModelStore) -> dict[str, tuple[int, str, list[str]]]:
    view = s.snapshot()
    return {
        name: (d["revision"], d["champion"]["model_id"], sorted(view.models_of(d)))
        for name, d in view.deployments.items()
    }


def test_a_deployment_before_its_model_is_applied_when_the_model_arrives():
    seen = []
    s = store(lambda d, status: seen.append((d["revision"], status)))
    assert s.on_deployment(deployment(1, "a")) == "pending"
    assert s.pending() == {"credit": 1} and s.snapshot().deployments == {}
    assert s.on_model(model("m", 1, "a")) == "accepted"
    assert served(s) == {"credit": (1, "a", ["a"])}
    assert set(s.snapshot().models) == {"a"}
    assert seen == [(1, "applied")] and s.pending() == {}


def test_it_waits_for_every_model_it_names():
    s = store()
    assert s.on_deployment(deployment(1, "a", ["b"])) == "pending"
    s.on_model(model("m", 1, "a"))
    assert s.pending() == {"credit": 1} and served(s) == {}
    s.on_model(model("c", 1, "b"))
    assert served(s) == {"credit": (1, "a", ["a", "b"])} and s.pending() == {}


def test_a_newer_held_revision_replaces_an_older_one_and_an_older_one_is_stale():
    s = store()
    assert s.on_deployment(deployment(2, "x")) == "pending"
    assert s.on_deployment(deployment(3, "y")) == "pending"
    assert s.on_deployment(deployment(1, "x")) == "stale"
    assert s.pending() == {"credit": 3}
    s.on_model(model("m", 1, "x"))
    assert served(s) == {}  # r2 was replaced by r3: never served
    s.on_model(model("m", 2, "y"))
    assert served(s) == {"credit": (3, "y", ["y"])}


def test_a_held_deployment_older_than_what_is_applied_is_dropped():
    s = store()
    s.on_model(model("m", 1, "a"))
    assert s.on_deployment(deployment(2, "x")) == "pending"
    assert s.on_deployment(deployment(3, "a")) == "applied"
    assert s.pending() == {}
    s.on_model(model("n", 1, "x"))
    assert served(s) == {"credit": (3, "a", ["a"])}


def test_an_older_applicable_revision_is_served_while_a_newer_one_waits():
    s = store()
    s.on_model(model("m", 1, "a"))
    assert s.on_deployment(deployment(3, "x")) == "pending"
    assert s.on_deployment(deployment(2, "a")) == "applied"
    assert s.pending() == {"credit": 3}
    s.on_model(model("n", 1, "x"))
    assert served(s) == {"credit": (3, "x", ["x"])}


def test_a_held_deployment_whose_model_cannot_load_is_rejected_and_released():
    def refuse(content):
        raise RuntimeError("onnxruntime says no")

    seen = []
    s = store(lambda d, status: seen.append(status), load=refuse)
    s.on_deployment(deployment(1, "a"))
    s.on_model(model("m", 1, "a"))
    assert seen == ["rejected:unsafe_model"] and s.pending() == {} and served(s) == {}


MODELS = [model("m", 1, "a"), model("m", 2, "b"), model("n", 1, "c")]
DEPLOYMENTS = [
    deployment(1, "a"),
    deployment(2, "b", ["c"]),
    deployment(1, "c", name="other"),
    deployment(3, "b"),
]


def interleavings(first: list, second: list):
    """Every merge of two sequences that keeps each one's own order (as a topic partition)."""
    n = len(first) + len(second)
    for slots in itertools.combinations(range(n), len(first)):
        a, b = iter(first), iter(second)
        yield [("model", next(a)) if i in slots else ("deployment", next(b)) for i in range(n)]


def test_every_arrival_order_converges_on_the_same_champions():
    expected = {"credit": (3, "b", ["b"]), "other": (1, "c", ["c"])}
    orders = list(interleavings(MODELS, DEPLOYMENTS))
    assert len(orders) == 35
    for order in orders:
        s = store()
        for kind, record in order:
            if kind == "model":
                s.on_model(record)
            else:
                s.on_deployment(record)
        assert served(s) == expected, order
        assert set(s.snapshot().models) == {"b", "c"} and s.pending() == {}
