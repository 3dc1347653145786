"""The drift service uses only verified control records, on the real broker and Redis (issue 28).

Three deployments get the same events: `good` (signed, its model signed), `tampered` (signed, but
its model's baseline was changed after the trainer signed it) and `forged` (an unsigned
Deployment naming the good model). Only `good` is monitored and reported; the tampered model and
the forged deployment are dead-lettered by drift with `bad_signature`, and the others' events are
counted as unmonitored.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from services.common import serde
from tests.drift_service import metric_value, start_drift, wait_consumed
from tests.drift_support import T0, content, deployment, event, model_record, numeric_baseline
from tests.kafka_support import free_port, make_topics, produce, read_all
from tests.signing_support import deployment_bytes

pytestmark = pytest.mark.integration
TOPICS = ["events", "predictions", "actuals", "models", "deployments", "drift", "deadletter"]
EVENTS = 300  # per deployment; windows of 100 events


def test_a_model_with_a_bad_signature_and_an_unsigned_deployment_are_not_used(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    good = content("a" * 64, 1, [numeric_baseline("x")], name="good")
    bad = content("b" * 64, 1, [numeric_baseline("x")], name="tampered")
    tampered = model_record(bad)
    tampered["content"] = copy.deepcopy(bad)
    tampered["content"]["baseline"]["features"][0]["mean"] = 42.0  # after signing
    produce(
        kafka_bootstrap,
        namer.models,
        [
            ("good", serde.encode("ModelPublished", model_record(good))),
            ("tampered", serde.encode("ModelPublished", tampered)),
        ],
    )
    forged = deployment("forged", good)
    produce(
        kafka_bootstrap,
        namer.deployments,
        [
            ("good", deployment_bytes(deployment("good", good))),
            ("tampered", deployment_bytes(deployment("tampered", bad))),
            ("forged", serde.encode("Deployment", forged)),
        ],
    )
    port = free_port()
    proc = start_drift(
        kafka_bootstrap, prefix, drift_group, tmp_path / "drift.log",
        window_count=100, metrics_port=port,
    )  # fmt: skip
    ns = f"streamops:drift:{drift_group}"
    rng = np.random.default_rng(3)
    items = [
        (f"{name}{i}", serde.encode("FeatureEvent", event(name, i, T0 + i, {"x": x})))
        for i, x in enumerate(rng.normal(size=EVENTS).tolist())
        for name in ("good", "tampered", "forged")
    ]
    try:
        produce(kafka_bootstrap, namer.events, items)
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)
        unmonitored = metric_value(port, "streamops_drift_unmonitored_total", {})
        code, _ = proc.terminate()
        assert code == 0, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    assert unmonitored == 2 * EVENTS
    reports = [
        serde.decode(v, expected="DriftReport")[1]
        for *_, v in read_all(kafka_bootstrap, namer.drift)
    ]
    assert {r["deployment"] for r in reports} == {"good"}, "only the verified pair is monitored"
    assert sum(r["event_count"] for r in reports) == EVENTS
    assert redis_client.get(f"{ns}:monitor:tampered") is None
    assert redis_client.get(f"{ns}:monitor:forged") is None
    letters = [
        serde.decode(v, expected="DeadLetter")[1]
        for *_, v in read_all(kafka_bootstrap, namer.deadletter)
    ]
    assert sorted((d["service"], d["source_topic"], d["reason"]) for d in letters) == [
        ("drift", namer.deployments, "bad_signature"),
        ("drift", namer.models, "bad_signature"),
    ]
    assert {d["original"] for d in letters} == {
        serde.encode("ModelPublished", tampered),
        serde.encode("Deployment", forged),
    }
