"""Pure registry logic: change requests, guardrails, roles, comparison, lineage."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

from services.common.errors import ConfigError
from services.common.settings import Secret
from services.registry import compare, roles
from services.registry.change import Change, InvalidChange, next_deployment
from services.registry.guardrails import incompatibilities, refusal
from services.registry.lineage import lineage_graph
from services.registry.roles import Role, TokenTable

pytestmark = pytest.mark.unit


def content(version: int = 1, **changes: Any) -> dict[str, Any]:
    """A minimal model summary with the fields the registry logic reads."""
    base = {
        "model_id": f"id{version}",
        "name": "credit",
        "version": version,
        "parent_id": f"id{version - 1}" if version > 1 else None,
        "created_at": 1000 * version,
        "task": "classification",
        "estimator": "hgb",
        "signature_in": {
            "features": [
                {"name": "age", "kind": "numeric", "categories": []},
                {"name": "car", "kind": "categorical", "categories": ["a", "b"]},
            ]
        },
        "classes": ["0", "1"],
        "lineage": {
            "dataset": {
                "kind": "builtin",
                "uri": "builtin:credit",
                "content_hash": "h1",
                "rows": 100,
                "columns": [],
                "stream_slices": [],
            },
            "params": {"learning_rate": "0.1", "max_depth": "null"},
            "metrics": {"f1": 0.8, "log_loss": 0.4},
        },
    }
    return {**base, **changes}


def ref(c: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": c["name"], "model_id": c["model_id"], "version": c["version"]}


def approve(current, history, change, now=1_000):
    return next_deployment(
        "credit", current, history, change, approver="bo", reason="r", now_ms=now
    )


def test_first_request_creates_revision_one_with_setup():
    change = Change(
        "set_champion", model=ref(content()), setup={"policy": {"auto_approve": True}, "mode": "ab"}
    )
    record = approve(None, [], change)
    assert record["revision"] == 1 and record["champion"]["model_id"] == "id1"
    assert record["policy"]["auto_approve"] is True and record["mode"] == "ab"
    assert record["updated_by"] == "bo" and record["challengers"] == []


def test_new_deployment_needs_a_champion_first():
    with pytest.raises(InvalidChange, match="create it with a set_champion"):
        approve(None, [], Change("add_challenger", model=ref(content())))


def test_challengers_weights_promotion_and_rollback():
    r1 = approve(None, [], Change("set_champion", model=ref(content(1)), setup={"mode": "ab"}))
    r2 = approve(r1, [r1], Change("add_challenger", model=ref(content(2)), weight=0.3))
    assert r2["revision"] == 2 and r2["challengers"][0]["weight"] == 0.3
    with pytest.raises(InvalidChange, match="sum to 1.100"):
        approve(r2, [r1, r2], Change("add_challenger", model=ref(content(3)), weight=0.8))
    r3 = approve(r2, [r1, r2], Change("set_champion", model=ref(content(2))))
    assert r3["champion"]["version"] == 2 and r3["challengers"] == []  # promoted, not both
    r4 = approve(r3, [r1, r2, r3], Change("rollback"))
    assert r4["revision"] == 4 and r4["champion"]["version"] == 1
    assert r4["challengers"] == r2["challengers"]
    r5 = approve(r4, [r1, r2, r3, r4], Change("rollback", to_revision=1))
    assert r5["champion"]["version"] == 1 and r5["challengers"] == []
    with pytest.raises(InvalidChange, match="cannot roll back to revision 9"):
        approve(r5, [r1, r2, r3, r4, r5], Change("rollback", to_revision=9))
    with pytest.raises(InvalidChange, match="not a challenger"):
        approve(r5, [], Change("remove_challenger", model=ref(content(3))))
    with pytest.raises(InvalidChange, match="already champion"):
        approve(r5, [], Change("set_champion", model=ref(content(1))))


def test_change_validation_and_payload_round_trip():
    with pytest.raises(InvalidChange, match="unknown action"):
        Change("promote").validate()
    with pytest.raises(InvalidChange, match="mode must be"):
        Change("set_mode", mode="canary").validate()
    with pytest.raises(InvalidChange, match="outside 0..1"):
        Change("add_challenger", model=ref(content()), weight=1.5).validate()
    change = Change("add_challenger", model=ref(content()), weight=0.2)
    assert Change.from_payload({**change.to_payload(), "base_revision": 3}) == change


def test_guardrail_names_every_mismatch():
    champion = content(1)
    assert incompatibilities(champion, content(2)) == []
    new_category = content(
        2,
        signature_in={
            "features": [
                {"name": "age", "kind": "numeric", "categories": []},
                {"name": "car", "kind": "categorical", "categories": ["a", "b", "c"]},
            ]
        },
    )
    assert incompatibilities(champion, new_category) == []  # new categories are fine
    odd = content(
        3,
        task="regression",
        classes=[],
        signature_in={
            "features": [
                {"name": "age", "kind": "categorical", "categories": []},
                {"name": "zip", "kind": "categorical", "categories": []},
            ]
        },
    )
    message = refusal("credit", champion, odd)
    assert message is not None
    for part in (
        "task is 'regression'",
        "missing input features ['car']",
        "unexpected input features ['zip']",
        "feature 'age' is categorical",
        "classes [] differ",
    ):
        assert part in message
    assert refusal("credit", champion, content(2)) is None


def test_tokens_roles_and_bad_entries():
    a16, e16 = "a" * 16, "e" * 16
    table = TokenTable.parse(Secret(f"ana:owner:{a16}, ed:editor:{e16}"))
    assert table.authenticate(a16).role is Role.OWNER
    assert table.authenticate(e16).name == "ed"
    assert table.authenticate("a" * 15) is None
    assert Role.OWNER.allows(Role.EDITOR) and not Role.EDITOR.allows(Role.OWNER)
    assert Role.VIEWER.allows(Role.VIEWER) and not Role.VIEWER.allows(Role.EDITOR)
    for bad, why in (
        ("ana:owner", "not name:role:token"),
        ("ana:root:secret1", "role 'root'"),
        ("a:owner:xxxxxxxxxxxxxxxx,a:viewer:yyyyyyyyyyyyyyyy", "used twice"),
        ("policy:owner:xxxxxxxxxxxxxxxx", "reserved"),
        ("ana:owner:123", "shorter than 16"),
        ("ana:owner:xxxxxxxxxxxxxxxx,bo:owner:xxxxxxxxxxxxxx1", "'bo' is shorter than 16"),
    ):
        with pytest.raises(ConfigError, match=why) as info:
            TokenTable.parse(Secret(bad))
        assert "xxxxxx" not in str(info.value) and "secret1" not in str(info.value)


def test_compare_diff_and_deltas():
    a = content(1)
    b = content(
        2,
        estimator="rf",
        lineage={
            **a["lineage"],
            "params": {"learning_rate": "0.2", "n_estimators": "50"},
            "metrics": {"f1": 0.85, "log_loss": 0.5},
        },
    )
    diff = compare.compare(a, b)
    assert diff["params"]["changed"] == {"learning_rate": {"a": 0.1, "b": 0.2}}
    assert diff["params"]["added"] == {"n_estimators": 50}
    assert diff["params"]["removed"] == {"max_depth": None}
    assert diff["metrics"]["f1"]["b_better"] is True
    assert diff["metrics"]["log_loss"]["b_better"] is False  # higher loss is worse
    assert diff["metrics"]["f1"]["delta"] == pytest.approx(0.05)
    assert diff["same_data"] is True and diff["estimator"] == {"a": "hgb", "b": "rf"}


def test_lineage_graph_walks_ancestors_descendants_and_slices():
    stream = {
        "kind": "stream",
        "uri": "events+actuals",
        "content_hash": "h3",
        "rows": 50,
        "columns": [],
        "stream_slices": [{"topic": "e", "partition": 0, "start_offset": 10, "end_offset": 59}],
    }
    models = {
        m["model_id"]: m
        for m in (
            content(1),
            content(2),
            content(3, lineage={**content(3)["lineage"], "dataset": stream}),
        )
    }
    children = {"id1": ["id2"], "id2": ["id3"]}
    graph = lineage_graph("id2", models.get, lambda i: children.get(i, []))
    assert graph is not None and graph["root"] == "model:id2"
    ids = {n["id"] for n in graph["nodes"]}
    assert {"model:id1", "model:id2", "model:id3", "data:h1", "data:h3", "slice:e/0/10-59"} <= ids
    edges = {(e["source"], e["kind"], e["target"]) for e in graph["edges"]}
    assert ("model:id2", "parent", "model:id1") in edges
    assert ("model:id3", "parent", "model:id2") in edges
    assert ("model:id3", "trained_on", "data:h3") in edges
    assert ("data:h3", "slice", "slice:e/0/10-59") in edges
    assert lineage_graph("nope", models.get, lambda i: []) is None
    small = lineage_graph("id1", models.get, lambda i: children.get(i, []), max_models=1)
    assert small["truncated"] is True


def test_doctests():
    for module in (roles, compare):
        assert doctest.testmod(module).failed == 0
