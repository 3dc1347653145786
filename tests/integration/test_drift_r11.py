"""R11: kill -9 the drift service three times and Redis once; the window aggregates stored in
Redis equal an offline recomputation from the topics: nothing double-counted, nothing missed."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from services.common import serde
from tests.drift_service import (
    closed_windows,
    monitor_state,
    start_drift,
    stored_offsets,
    wait_consumed,
)
from tests.drift_support import (
    T0,
    categorical_baseline,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)
from tests.kafka_support import REPO, end_offsets, make_topics, produce, read_all
from tests.signing_support import deployment_bytes

pytestmark = pytest.mark.integration

WINDOW = 500
CHUNKS = (4000, 4000, 4000, 8000, 8000, 2000)
FAULTS = ("service", "service", "service", "redis", "rollback", "")
CATS = {"a": 50, "b": 30, "c": 20}


def redis_sh(action: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "infra/redis/redis.sh"), action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_progress(redis_client, ns: str, topic: str, at_least: int, proc, timeout_s=60.0) -> int:
    """Wait until the stored offsets of `topic` sum to at least `at_least`; returns the sum."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done = sum(o for (t, _p), o in stored_offsets(redis_client, ns).items() if t == topic)
        except Exception:
            done = 0
        if done >= at_least:
            return done
        assert proc.alive(), proc.log_tail()
        time.sleep(0.005)
    raise AssertionError(f"no progress to {at_least} on {topic}:\n{proc.log_tail()}")


def test_r11_kills_neither_double_count_nor_miss(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path
):
    namer = make_topics(
        kafka_bootstrap,
        prefix,
        [
            "events",
            "predictions",
            "actuals",
            "models",
            "deployments",
            "drift",
            "breaches",
            "deadletter",
        ],
    )
    features = [numeric_baseline("x"), categorical_baseline("k", CATS)]
    c = content("e" * 64, 1, features)
    produce(
        kafka_bootstrap,
        namer.models,
        [(b"credit", serde.encode("ModelPublished", model_record(c)))],
    )
    produce(kafka_bootstrap, namer.deployments, [(b"d", deployment_bytes(deployment("d", c)))])
    group = drift_group
    ns = f"streamops:drift:{group}"
    rng = np.random.default_rng(11)
    log = tmp_path / "drift.log"

    def start():
        return start_drift(
            kafka_bootstrap,
            prefix,
            group,
            log,
            window_count=WINDOW,
            batch_size=20,
            replay_timeout_s=60,
            instance_id="r11-0",
        )

    def events_done() -> int:
        offsets = stored_offsets(redis_client, ns)
        return sum(o for (t, _p), o in offsets.items() if t == namer.events)

    proc = None
    kills = []
    produced = 0
    try:
        for chunk, size in enumerate(CHUNKS):
            ids = range(produced, produced + size)
            xs = rng.normal(0.3 * chunk, 1.0, size)
            ks = rng.choice(["a", "b", "c", "zz"], size)
            items = [
                (
                    f"a{i}",
                    serde.encode(
                        "FeatureEvent", event("d", i, T0 + i, {"x": float(x), "k": str(k)})
                    ),
                )
                for i, x, k in zip(ids, xs, ks, strict=True)
            ]
            items.insert(100, (b"poison", b"\x00not avro"))
            produce(kafka_bootstrap, namer.events, items)
            # Predictions for a quarter of the events, a third of them produced twice (a
            # replayed scorer batch): counted once.
            preds = [
                (
                    f"a{i}",
                    serde.encode("Prediction", prediction("d", i, c, float(rng.random()), T0 + i)),
                )
                for i in ids[: size // 4]
            ]
            produce(kafka_bootstrap, namer.predictions, preds + preds[: len(preds) // 3])
            if proc is None:
                proc = start()
            at = wait_progress(redis_client, ns, namer.events, produced + size // 5, proc)
            fault = FAULTS[chunk]
            stored = at
            restarted = time.monotonic()
            if fault == "service":  # kill -9 the service mid-chunk, restart it
                proc.kill9()
                stored = events_done()
                restarted = time.monotonic()
                proc = start()
            elif fault == "redis":  # kill -9 Redis mid-chunk, restart it (AOF everysec)
                redis_sh("kill")
                time.sleep(0.5)
                redis_sh("start")
                stored = events_done()  # what survived in the append-only file
                restarted = time.monotonic()
            elif fault == "rollback":  # Redis lost its last writes: state and offsets go back
                saved = snapshot(redis_client, ns)
                end = sum(end_offsets(kafka_bootstrap, namer.events).values())
                wait_progress(redis_client, ns, namer.events, min(at + size // 5, end), proc)
                restore(redis_client, ns, saved)
                stored = events_done()
                restarted = time.monotonic()
            if fault:
                end = sum(end_offsets(kafka_bootstrap, namer.events).values())
                wait_progress(redis_client, ns, namer.events, min(stored + 1, end), proc)
                kills.append(
                    (
                        fault,
                        at - produced,
                        stored - produced,
                        round(time.monotonic() - restarted, 1),
                    )
                )
            produced += size
        wait_consumed(
            redis_client,
            ns,
            kafka_bootstrap,
            [namer.events, namer.predictions],
            proc,
            timeout_s=120,
        )
        assert proc.alive(), proc.log_tail()
        code, _ = proc.terminate()
        assert code == 0, proc.log_tail()
    finally:
        if proc is not None and proc.alive():
            proc.kill9()
        if redis_sh_status() != 0:
            redis_sh("start")
    print(f"R11 kills (what, done in chunk at kill, stored after, seconds to progress): {kills}")
    assert "recovered from Redis" in log.read_text(), "the rolled-back state was not noticed"
    assert all(k[3] <= 10 for k in kills), f"recovery slower than 10 s: {kills}"

    # Offline recomputation from the topic.
    xs_all, ks_all = [], []
    for _p, _o, _k, value in read_all(kafka_bootstrap, namer.events):
        try:
            _n, rec = serde.decode(value, expected="FeatureEvent")
        except Exception:
            continue
        xs_all.append(rec["features"]["x"])
        ks_all.append(rec["features"]["k"])
    total = len(xs_all)
    assert total == sum(CHUNKS)
    edges = np.asarray(features[0]["bin_edges"])
    want_x = np.bincount(np.searchsorted(edges[1:-1], xs_all, side="right"), minlength=10)
    order = sorted(CATS)
    want_k = [ks_all.count(k) for k in order] + [sum(k not in CATS for k in ks_all)]

    closed = closed_windows(redis_client, ns, "d")
    state = monitor_state(redis_client, ns, "d")
    open_windows = [w[5] for w in state["windows"]["open"]]
    assert sorted(closed) == list(range(len(closed)))
    assert all(w["events"] == WINDOW for w in closed.values()), "a window is not exactly full"
    events = sum(w["events"] for w in closed.values()) + sum(w["counts"][0] for w in open_windows)
    got_x = np.sum(
        [w["bins"]["x"] for w in closed.values()]
        + [w["stats"]["x"]["psi"]["counts"] for w in open_windows],
        axis=0,
    )
    got_k = np.sum(
        [w["bins"]["k"] for w in closed.values()]
        + [w["stats"]["k"]["psi"]["counts"] for w in open_windows],
        axis=0,
    )
    predictions = sum(w["predictions"] for w in closed.values()) + sum(
        w["counts"][1] for w in open_windows
    )
    assert events == total, f"double-counted or missed events: {events - total:+d}"
    assert got_x.tolist() == want_x.tolist()
    assert got_k.tolist() == want_k
    assert predictions == sum(n // 4 for n in CHUNKS), "a prediction double-counted or missed"
    assert len(closed) == total // WINDOW


SNAPSHOT = """
local out = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
  table.insert(out, k)
  table.insert(out, redis.call('DUMP', k))
end
return out
"""
RESTORE = """
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end
for i = 2, #ARGV, 2 do redis.call('RESTORE', ARGV[i], 0, ARGV[i + 1], 'REPLACE') end
return 1
"""


def snapshot(redis_client, ns: str) -> list[bytes]:
    """Every key of the namespace and its DUMP, taken atomically."""
    return redis_client.eval(SNAPSHOT, 0, f"{ns}:*")


def restore(redis_client, ns: str, saved: list[bytes]) -> None:
    """Atomically put the namespace back as it was (what a lost second of AOF looks like)."""
    redis_client.eval(RESTORE, 0, f"{ns}:*", *saved)


def redis_sh_status() -> int:
    return subprocess.run(
        ["bash", str(REPO / "infra/redis/redis.sh"), "status"],
        check=False,
        capture_output=True,
        timeout=30,
    ).returncode
