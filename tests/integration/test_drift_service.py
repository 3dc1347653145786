"""The drift service as a process on the real broker and Redis: a mean shift fires and resolves,
no drift stays quiet, and the join is right with delayed, missing and duplicated actuals."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from services.common import serde
from tests.drift_service import consumer_lag, start_drift, wait_consumed
from tests.drift_support import (
    T0,
    actual,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)
from tests.kafka_support import end_offsets, free_port, make_topics, produce, read_all
from tests.signing_support import deployment_bytes

pytestmark = pytest.mark.integration
TOPICS = [
    "events",
    "predictions",
    "actuals",
    "models",
    "deployments",
    "drift",
    "breaches",
    "deadletter",
]


def setup(bootstrap: str, prefix: str, group: str, deployments: list[dict], contents: list[dict]):
    namer = make_topics(bootstrap, prefix, TOPICS)
    produce(
        bootstrap,
        namer.models,
        [(c["name"], serde.encode("ModelPublished", model_record(c))) for c in contents],
    )
    produce(
        bootstrap,
        namer.deployments,
        [(d["name"], deployment_bytes(d)) for d in deployments],
    )
    return namer, group, f"streamops:drift:{group}"


def records(bootstrap: str, topic: str, name: str) -> list[dict]:
    return [serde.decode(v, expected=name)[1] for _p, _o, _k, v in read_all(bootstrap, topic)]


def test_a_mean_shift_fires_and_resolves_and_no_drift_stays_quiet(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    c = content(
        "f" * 64, 1, [numeric_baseline("x"), categorical_baseline("k", {"a": 5000, "b": 5000})]
    )
    namer, group, ns = setup(
        kafka_bootstrap, prefix, drift_group, [deployment("shift", c), deployment("quiet", c)], [c]
    )
    port = free_port()
    proc = start_drift(
        kafka_bootstrap, prefix, group, tmp_path / "drift.log", window_count=1000, metrics_port=port
    )
    rng = np.random.default_rng(4)
    shifts = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    try:
        for k, shift in enumerate(shifts):
            items = []
            for name, mean in (("shift", shift), ("quiet", 0.0)):
                for i in range(1000):
                    n = k * 1000 + i
                    e = event(
                        name,
                        n,
                        T0 + n,
                        {"x": float(rng.normal(mean)), "k": str(rng.choice(["a", "b"]))},
                    )
                    items.append((f"{name}{n}", serde.encode("FeatureEvent", e)))
            produce(kafka_bootstrap, namer.events, items)
            # One phase per window: count windows follow consumption order.
            wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)
        # The lag gauge follows the stream: within its next refreshes (at most once a second)
        # every events partition shows, caught up, and no partition shows a lag.
        events = {(namer.events, p) for p in end_offsets(kafka_bootstrap, namer.events)}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lag = consumer_lag(port)
            if events <= set(lag) and not any(lag.values()):
                break
            time.sleep(0.2)
        assert events <= set(lag) and not any(lag.values()), lag
        code, seconds = proc.terminate()
        assert code == 0 and seconds < 10, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    # No fault was injected: no batch may have needed a recovery.
    assert "recovering" not in (tmp_path / "drift.log").read_text(), proc.log_tail()
    reports = records(kafka_bootstrap, namer.drift, "DriftReport")
    breaches = records(kafka_bootstrap, namer.breaches, "ThresholdBreach")
    by_dep = {d: [r for r in reports if r["deployment"] == d] for d in ("shift", "quiet")}
    assert [r["event_count"] for r in by_dep["shift"]] == [1000] * 6
    assert [r["event_count"] for r in by_dep["quiet"]] == [1000] * 6
    psi = [
        r["features"][0]["psi"] for r in sorted(by_dep["shift"], key=lambda r: r["window_start"])
    ]
    assert psi[2] > 0.25 and psi[3] > 0.25 and max(psi[:2] + psi[4:]) < 0.1, psi
    timeline = [
        (b["deployment"], b["metric"], b["feature"], b["status"], b["window_start"])
        for b in breaches
    ]
    assert timeline == [
        ("shift", "psi", "x", "firing", T0 + 2000),
        ("shift", "psi", "x", "firing", T0 + 3000),  # still firing: sent again (continuing)
        ("shift", "psi", "x", "resolved", T0 + 4000),
    ]
    assert [b["labels"]["transition"] for b in breaches] == ["firing", "continuing", "resolved"]
    assert breaches[0]["severity"] == "critical" and breaches[0]["kind"] == "data_drift"
    assert all(r["model_id"] == "f" * 64 for r in reports)


def test_join_with_delayed_missing_and_duplicated_actuals(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    champ = content("1" * 64, 1, [numeric_baseline("x")])
    chall = content("2" * 64, 2, [numeric_baseline("x")])
    d = deployment("j", champ, challengers=[chall]) | {"label_delay_seconds": 7200}
    namer, group, ns = setup(kafka_bootstrap, prefix, drift_group, [d], [champ, chall])
    proc = start_drift(
        kafka_bootstrap, prefix, group, tmp_path / "drift.log", window_count=1000, join_ttl_s=3600
    )
    rng = np.random.default_rng(9)
    n = 1000
    labels = rng.choice(["0", "1"], n)
    p_champ = np.clip(rng.random(n) * 0.6 + (labels == "1") * 0.4, 0, 1)
    p_chall = rng.random(n)
    delay = {i: 500 if i < 200 else 1000 * (i % 10 + 1) for i in range(800)}

    def act(i: int, label: str):
        return (f"a{i}", serde.encode("Actual", actual("j", i, label, T0 + i + delay[i])))

    try:
        # Phase A: every prediction of both models, and 200 actuals that come first.
        preds = [
            (f"a{i}", serde.encode("Prediction", prediction("j", i, champ, p_champ[i], T0 + i)))
            for i in range(n)
        ]
        preds += [
            (
                f"a{i}",
                serde.encode(
                    "Prediction", prediction("j", i, chall, p_chall[i], T0 + i, served=False)
                ),
            )
            for i in range(n)
        ]
        produce(kafka_bootstrap, namer.actuals, [act(i, labels[i]) for i in range(200)])
        produce(kafka_bootstrap, namer.predictions, preds)
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.predictions, namer.actuals], proc)
        # Phase B: delayed actuals for 200..799 (800..999 never come), and a second, wrong,
        # actual for 0..99 (the first one wins).
        flipped = [act(i, "1" if labels[i] == "0" else "0") for i in range(100)]
        produce(
            kafka_bootstrap, namer.actuals, [act(i, labels[i]) for i in range(200, 800)] + flipped
        )
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.actuals], proc)
        # Phase C: the window's events close it.
        produce(
            kafka_bootstrap,
            namer.events,
            [
                (f"a{i}", serde.encode("FeatureEvent", event("j", i, T0 + i, {"x": 0.1})))
                for i in range(n)
            ],
        )
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)
        assert proc.terminate()[0] == 0, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    # No fault was injected: no batch may have needed a recovery.
    assert "recovering" not in (tmp_path / "drift.log").read_text(), proc.log_tail()
    (report,) = records(kafka_bootstrap, namer.drift, "DriftReport")
    joined = np.arange(800)
    pred = np.where(p_champ >= 0.5, "1", "0")
    assert report["prediction_count"] == n
    assert report["label_coverage"] == pytest.approx(0.8)
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(np.mean(pred[joined] == labels[joined]))
    assert m["auc"] == pytest.approx(roc_auc_score(labels[joined] == "1", p_champ[joined]))
    (ch,) = report["challengers"]
    pred_ch = np.where(p_chall >= 0.5, "1", "0")
    assert ch["model_id"] == "2" * 64 and ch["model_version"] == 2
    assert ch["metrics"]["accuracy"] == pytest.approx(np.mean(pred_ch[joined] == labels[joined]))
    assert report["label_delay_ms_p50"] == pytest.approx(float(np.median(list(delay.values()))))
    (generation,) = [
        key
        for key in redis_client.scan_iter(match=f"{ns}:join-gen:j:*")
        if redis_client.hexists(key, "a5")
    ]
    # Generations are half the service's TTL (3600 s) long; the deployment's label delay (two
    # hours) is how long its entries are kept from the end of theirs.
    assert 7200 < redis_client.ttl(generation) <= 9000, "the label delay from the generation's end"


def test_the_reference_switches_when_the_champion_changes(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    v1 = content("3" * 64, 1, [numeric_baseline("x")])
    v2 = content("4" * 64, 2, [numeric_baseline("x", loc=5.0)])
    namer, group, ns = setup(kafka_bootstrap, prefix, drift_group, [deployment("s", v1)], [v1, v2])
    proc = start_drift(kafka_bootstrap, prefix, group, tmp_path / "drift.log", window_count=1000)
    sent = 0

    def send(count: int) -> None:
        nonlocal sent
        produce(
            kafka_bootstrap,
            namer.events,
            [
                (f"a{i}", serde.encode("FeatureEvent", event("s", i, T0 + i, {"x": 0.0})))
                for i in range(sent, sent + count)
            ],
        )
        sent += count
        wait_consumed(redis_client, ns, kafka_bootstrap, [namer.events], proc)

    def stored_model() -> str:
        return json.loads(redis_client.get(f"{ns}:monitor:s"))["model_id"]

    try:
        send(1000)
        send(500)
        produce(
            kafka_bootstrap,
            namer.deployments,
            [("s", deployment_bytes(deployment("s", v2, revision=2)))],
        )
        # The switch is applied with the deployment's next records, once the follower saw it.
        deadline = time.monotonic() + 30
        while stored_model() != v2["model_id"]:
            assert time.monotonic() < deadline, proc.log_tail()
            send(1)
        switched_after = sent
        send(1000)
        assert proc.terminate()[0] == 0, proc.log_tail()
    finally:
        if proc.alive():
            proc.kill9()
    reports = records(kafka_bootstrap, namer.drift, "DriftReport")
    summary = [(r["model_id"][0], r["model_version"], r["event_count"]) for r in reports]
    # The partial window closes against v1 at the switch (the batch that switched is v2's).
    assert summary[0] == ("3", 1, 1000)
    assert summary[1][:2] == ("3", 1) and 500 <= summary[1][2] < switched_after - 1000
    assert summary[2] == ("4", 2, 1000)
    assert reports[2]["features"][0]["psi"] > 1.0  # x = 0 is far from v2's baseline (mean 5)
