"""`import streamops` on the real broker and a real registry server: what the client sends is
on the topics, keyed by association id; predictions are read back per deployment; a reported
prediction and its event share a key; registry reads and their errors; a broker that is not
there surfaces as DeliveryError within the flush timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import streamops

from services.common import serde
from tests.drift_support import prediction as prediction_row
from tests.kafka_support import free_port, make_topics, produce, read_all
from tests.registry_support import eventually

pytestmark = pytest.mark.integration

INPUTS = ["events", "predictions", "actuals"]
FRAUD = {"model_name": "fraud", "version": 1, "model_id": "e" * 64}


def decoded(bootstrap: str, topic: str) -> list[tuple[int, str, dict[str, Any]]]:
    """(partition, key, record) of every message on a topic, decoded as the services do."""
    name = topic.rsplit(".", 1)[1]
    record = {"events": "FeatureEvent", "predictions": "Prediction", "actuals": "Actual"}[name]
    return [
        (p, (k or b"").decode(), serde.decode(v, expected=record, allow_json=True)[1])
        for p, _, k, v in read_all(bootstrap, topic, idle_s=0.5)
    ]


@pytest.fixture()
def client(kafka_bootstrap: str, prefix: str) -> Iterator[streamops.Client]:
    make_topics(kafka_bootstrap, prefix, INPUTS)
    with streamops.Client(bootstrap=kafka_bootstrap, prefix=prefix, environ={}) as c:
        yield c


def test_events_and_actuals_reach_their_topics_keyed_by_association_id(client, kafka_bootstrap):
    ids = [
        client.send_event("credit", {"salary": 52000 + i, "car": str(i), "age": None})
        for i in range(20)
    ]
    given = client.send_event(
        "credit", {"salary": 1.5}, association_id="cust-408", event_time=1_760_000_000_000
    )
    for aid in [*ids, given]:
        client.send_actual("credit", aid, "1" if aid.endswith(("0", "5")) else "0")
    client.flush(30)

    events = decoded(kafka_bootstrap, client.topics.events)
    actuals = decoded(kafka_bootstrap, client.topics.actuals)
    assert sorted(k for _, k, _ in events) == sorted([*ids, given])
    assert all(k == r["association_id"] for _, k, r in events + actuals)
    by_id = {r["association_id"]: r for _, _, r in events}
    assert by_id["cust-408"]["event_time"] == 1_760_000_000_000
    assert by_id[ids[3]]["features"] == {"salary": 52003.0, "car": "3", "age": None}
    assert sorted(k for _, k, _ in actuals) == sorted([*ids, given])
    # an event and its actual land on the same partition: same key, same partition count
    event_partition = {k: p for p, k, _ in events}
    assert all(event_partition[k] == p for p, k, _ in actuals)


def test_predictions_are_iterated_for_one_deployment(client, kafka_bootstrap):
    content = {"name": "fraud", "version": 1, "model_id": "e" * 64}
    now = int(time.time() * 1000)
    ours = [prediction_row("fraud", i, content, 0.8, now + i) for i in range(5)]
    others = [prediction_row("credit", i, content, 0.2, now + i) for i in range(5)]
    as_json = {
        "association_id": "j-1",
        "deployment": "fraud",
        "model_name": "fraud",
        "model_version": 1,
        "model_id": "e" * 64,
        "prediction": "1",
        "probabilities": {"0": 0.3, "1": 0.7},
    }
    topic = client.topics.predictions
    values = [serde.encode("Prediction", r) for r in ours + others]
    produce(
        kafka_bootstrap,
        topic,
        [(r["association_id"], v) for r, v in zip(ours + others, values, strict=True)],
    )
    produce(kafka_bootstrap, topic, [(b"j-1", json.dumps(as_json).encode()), (b"x", b"garbage")])

    started = time.monotonic()
    with client.predictions("fraud", from_beginning=True, timeout=2) as rows:
        seen = list(rows)
        assert rows.skipped == 1  # the garbage; other deployments' rows are not "skipped"
    assert time.monotonic() - started < 15
    assert sorted(r["association_id"] for r in seen) == ["a0", "a1", "a2", "a3", "a4", "j-1"]
    assert {r["deployment"] for r in seen} == {"fraud"}
    assert next(r for r in seen if r["association_id"] == "j-1")["probabilities"] == {
        "0": 0.3,
        "1": 0.7,
    }

    # From now: only what is written after the call, nothing from before.
    later = client.predictions("fraud", timeout=2)
    client.report_prediction("fraud", "new-1", {"amount": 5.0}, "0", model=FRAUD)
    client.flush(30)
    assert [r["association_id"] for r in later] == ["new-1"]


def test_report_prediction_writes_the_event_and_the_prediction_under_one_key(
    client, kafka_bootstrap
):
    for i in range(12):
        client.report_prediction(
            "fraud",
            f"tx-{i}",
            {"amount": 10.0 + i, "country": "fr"},
            "1" if i % 3 == 0 else "0",
            probabilities={"0": 0.6, "1": 0.4},
            model=FRAUD,
        )
    client.flush(30)
    events = {k: (p, r) for p, k, r in decoded(kafka_bootstrap, client.topics.events)}
    rows = {k: (p, r) for p, k, r in decoded(kafka_bootstrap, client.topics.predictions)}
    assert sorted(events) == sorted(rows) == sorted(f"tx-{i}" for i in range(12))
    for key, (partition, row) in rows.items():
        event_partition, event = events[key]
        assert partition == event_partition  # the same key goes to the same partition
        assert row["association_id"] == event["association_id"] == key
        assert row["event_time"] == event["event_time"]
        assert (row["role"], row["served"], row["model_id"]) == ("champion", True, "e" * 64)
        assert (row["model_name"], row["model_version"]) == ("fraud", 1)


def test_a_broker_that_is_not_there_raises_within_the_timeout(prefix):
    dead = f"127.0.0.1:{free_port()}"
    client = streamops.Client(bootstrap=dead, prefix=prefix, environ={})
    aid = client.send_event("credit", {"x": 1.0})
    client.send_actual("credit", aid, "1")
    started = time.monotonic()
    with pytest.raises(streamops.DeliveryError) as info:
        client.flush(timeout=3)
    assert time.monotonic() - started < 3 + 5
    error = info.value
    assert sorted((u.topic.rsplit(".", 1)[1], u.key) for u in error.undelivered) == [
        ("actuals", aid),
        ("events", aid),
    ]
    assert {u.outcome for u in error.undelivered} == {"failed"}
    assert dead in str(error) and "within 3 s" in str(error)

    client.send_event("credit", {"x": 2.0})
    started = time.monotonic()
    with pytest.raises(streamops.DeliveryError):
        client.close(timeout=2)  # close flushes: the same, never silence
    assert time.monotonic() - started < 2 + 5


# -- the registry ------------------------------------------------------------------------------


def test_registry_reads_and_the_champion_of_an_external_deployment(
    registry_url, kafka_bootstrap, prefix
):
    make_topics(kafka_bootstrap, prefix, INPUTS)
    env = {"STREAMOPS_CLI_REGISTRY_URL": registry_url, "STREAMOPS_CLI_TOKEN": "ed-token-16chars"}
    with streamops.Client(bootstrap=kafka_bootstrap, prefix=prefix, environ=env) as client:
        models = eventually(client.models, 20, "credit listed")
        assert [(m["name"], m["versions"]) for m in models] == [("credit", [1])]
        model = client.model("credit")
        assert model["version"] == 1 and model == client.model("credit", 1)
        assert model["signature_in"]["features"]
        with pytest.raises(streamops.ApiNotFound, match="404"):
            client.model("credit", 7)
        with pytest.raises(streamops.ApiNotFound, match="not in the registry"):
            client.deployment("credit")
        assert client.deployments() == []

        api = client.registry.api
        made = api.post(
            "/deployments/credit/requests",
            {
                "action": "set_champion",
                "reason": "external service",
                "model": {"name": "credit", "version": 1},
                "setup": {"external": True},
            },
        )
        with streamops.Client(
            registry_url=registry_url, token="bo-token-16chars", environ={}
        ) as owner:
            owner.registry.api.post(f"/requests/{made['request_id']}/approve", {})
        current = eventually(client.deployments, 20, "the deployment")[0]
        assert current["name"] == "credit" and current["external"] is True
        assert client.deployment("credit")["champion"]["model_id"] == model["model_id"]

        client.report_prediction("credit", "c-1", {"salary": 1.0}, "1")  # champion looked up
        client.flush(30)
    [(_, key, row)] = decoded(kafka_bootstrap, f"{prefix}predictions")
    assert key == "c-1"
    assert (row["model_name"], row["model_version"], row["model_id"]) == (
        "credit",
        1,
        model["model_id"],
    )

    with pytest.raises(streamops.ApiUnauthorized, match="401.*token="):
        streamops.Client(registry_url=registry_url, environ={}).models()
    with pytest.raises(streamops.ApiUnauthorized, match="401"):
        streamops.Client(registry_url=registry_url, token="nope", environ={}).models()
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(streamops.ApiUnreachable, match="not reachable.*registry_url="):
        streamops.Client(registry_url=nowhere, token="ed-token-16chars", environ={}).models()
