"""Scorer benchmark: drain rate against two baselines, latency at fixed rates, hot-swap time.

One run, one machine, one broker, side by side, on a pre-filled topic of N events for a
gradient-boosted model trained on builtin:credit:
- streamops scorer drain rate (`python -m services.scorer` processes, micro-batches): one
  process, and one per core in one consumer group (the headline `events_per_s`);
- baseline (a): the loop a user writes by hand: poll one event, scikit-learn predict on one row,
  produce, flush;
- baseline (b): a REST model server (FastAPI + scikit-learn) called once per event;
- latency from event time to prediction readable downstream at fixed rates, and at 5,000/s
  its floor: the same two hops through the shared runner with the scorer's settings and no
  model (`loadtest.relay --like-scorer`), read the same way;
- hot-swap time under load: Deployment record produced to first prediction by the new version.
Writes loadtest/results/scorer.json.

    python -m loadtest.bench_scorer --events 200000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from services.common import deployment_verifier, serde, signing
from services.common.admin import create_topic, ensure_topics
from services.common.hot_codecs import write_long, write_string
from services.common.kafka_config import KafkaConfig
from services.common.lifecycle import freeze_startup_objects
from services.common.producing import produce_waiting
from services.common.progress import Progress
from services.common.topics import TopicNamer
from services.scorer.config import ScorerSettings
from services.trainer.credit import credit_rows
from services.trainer.dataset import load_dataset
from services.trainer.model_build import TrainOptions, build_model
from services.trainer.publisher import signed_record
from tests.model_factory import deployment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results"
LOGICAL = ["events", "predictions", "models", "deployments", "deadletter", "review"]
DRAIN_BATCH = 2000  # the scorers' batch size in the drain (and on drift's live stream)
SLICE_S = 10.0  # a fixed-rate phase's p99 is also given per slice of this many seconds


def log(text: str) -> None:
    """Progress for the person running the benchmark."""
    print(f"[bench_scorer] {text}", flush=True)


def event_values(n: int, seed: int, prefix: str, now: bool = False) -> list[tuple[str, bytes]]:
    """Encoded FeatureEvents."""
    out = []
    for i, (features, _) in enumerate(credit_rows(n, seed=seed)):
        aid = f"{prefix}{i}"
        t = int(time.time() * 1000) if now else 1_700_000_000_000 + i
        out.append(
            (
                aid,
                serde.encode(
                    "FeatureEvent",
                    {
                        "association_id": aid,
                        "deployment": "credit",
                        "event_time": t,
                        "features": features,
                        "attributes": {},
                    },
                ),
            )
        )
    return out


def produce_all(producer: Producer, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Produce and wait for every acknowledgement."""
    progress = Progress(f"pre-filling {topic}", len(items))
    for i, (key, value) in enumerate(items):
        produce_waiting(producer, topic, value, key)
        if i % 10_000 == 0:
            progress.update(i)
    producer.flush(120)
    progress.update(len(items))
    progress.done()


# Brokers that want logins: bootstrap -> their var dir (loadtest/bench_secured.py fills it).
SECURED: dict[str, Path] = {}


def login(bootstrap: str, principal: str = "admin", client_id: str = "bench") -> KafkaConfig:
    """`principal`'s config on the broker at `bootstrap` (PLAINTEXT unless it is in SECURED)."""
    if bootstrap in SECURED:
        return KafkaConfig.local(bootstrap, SECURED[bootstrap], client_id, principal)
    return KafkaConfig(bootstrap, client_id)


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of a group's committed offsets on a topic."""
    c = Consumer({**login(bootstrap).admin(), "group.id": group})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    tps = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    c.close()
    return sum(max(tp.offset, 0) for tp in tps)


def start_scorer(
    args: argparse.Namespace,
    prefix: str,
    keys: Path,
    group: str,
    log_path: Path,
    metrics_port: int = 0,
    instance: str = "",
) -> subprocess.Popen[bytes]:
    """A scorer process on the benchmark topics (its instance id defaults to the group)."""
    # Its login (as itself, or PLAINTEXT) from the environment, whatever var/ says.
    env = dict(os.environ, PYTHONPATH=str(ROOT), **login(args.bootstrap, "scorer").environment())
    cmd = [
        sys.executable,
        "-m",
        "services.scorer",
        "--kafka-bootstrap",
        args.bootstrap,
        "--topic-prefix",
        prefix,
        "--trusted-keys-dir",
        str(keys),
        "--deployment-keys-dir",
        str(keys / "registry"),
        "--group-id",
        group,
        "--instance-id",
        instance or group,
        "--batch-size",
        str(args.batch_size),
        "--metrics-port",
        str(metrics_port),
    ]  # batching and commits: the scorer's defaults (recorded in the results)
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )


def deployment_bytes(content: dict[str, Any], revision: int, keys: Path) -> bytes:
    """The Deployment serving `content`, signed as the registry signs it, with the benchmark's
    registry key (made in `keys/registry`, which the scorers trust)."""
    key, _made = signing.ensure_keypair(keys / "registry")
    record = deployment_verifier.sign(deployment(content, revision), key)
    return serde.encode("Deployment", record)


def wait_members(bootstrap: str, group: str, count: int, timeout_s: float = 120.0) -> None:
    """Until `count` members of the group hold partitions."""
    admin = AdminClient(login(bootstrap).admin())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            members = admin.describe_consumer_groups([group])[group].result(timeout=10).members
        except KafkaException:
            members = []
        if len(members) == count and all(m.assignment.topic_partitions for m in members):
            return
        time.sleep(0.5)
    raise SystemExit(f"{count} scorers did not join group {group} within {timeout_s:.0f} s")


def drain_rate(args, kafka, keys, v1, values, processes: int, tmp: Path) -> float:
    """Events/s of `processes` scorers in one group draining the events (first to last commit).

    The scorers start on fresh topics and join first; then the events are produced at once, so
    the figure is the group's rate, not one member's while the others are still joining.
    """
    prefix = f"bd{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(prefix)
    ensure_topics(kafka.admin(), namer, only=LOGICAL)
    producer = Producer(kafka.producer(linger_ms=20))
    producer.produce(namer.models, serde.encode("ModelPublished", v1), "credit")
    producer.produce(namer.deployments, deployment_bytes(v1["content"], 1, keys), "credit")
    producer.flush(10)
    group = f"streamops-scorer-drain-{uuid.uuid4().hex[:6]}"  # a group the scorer owns
    procs = [
        start_scorer(
            args, prefix, keys, group, tmp / f"drain-{processes}-{i}.log", 0, f"{group}-{i}"
        )
        for i in range(processes)
    ]
    try:
        wait_members(args.bootstrap, group, processes)
        produce_all(producer, namer.events, values)
        deadline = time.monotonic() + 600
        first_t = first_n = None
        while time.monotonic() < deadline:
            done = committed_total(args.bootstrap, group, namer.events)
            if done and first_t is None:
                first_t, first_n = time.monotonic(), done
            if done >= len(values):
                return (done - first_n) / max(time.monotonic() - first_t, 1e-9)
            time.sleep(0.1)
        raise SystemExit(f"the scorers did not drain the topic within 10 minutes; see {tmp}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)


def _row(features: dict[str, Any], specs: list[dict[str, Any]]) -> np.ndarray:
    row = []
    for s in specs:
        v = features.get(s["name"])
        row.append(
            ("missing" if v is None else str(v))
            if s["kind"] == "categorical"
            else (np.nan if v is None else float(v))
        )
    return np.array([row], dtype=object)


def baseline_loop(args, events_topic: str, out_topic: str, pipeline, specs, limit: int) -> float:
    """Baseline (a): poll one, predict one row with scikit-learn, produce, flush."""
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"a-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True})
    consumer.subscribe([events_topic])
    done, started = 0, None
    while done < limit:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        started = started or time.perf_counter()
        _, event = serde.decode(msg.value(), expected="FeatureEvent")
        proba = pipeline.predict_proba(_row(event["features"], specs))[0]
        producer.produce(
            out_topic, json.dumps({"id": event["association_id"], "p": float(proba[1])}).encode()
        )
        producer.flush()
        done += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return done / elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline_rest(args, events_topic: str, out_topic: str, pipeline, specs, limit: int) -> float:
    """Baseline (b): one HTTP call per event to a FastAPI + scikit-learn model server."""
    import httpx
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, float]:
        return {"p": float(pipeline.predict_proba(_row(body, specs))[0][1])}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"b-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True})
    consumer.subscribe([events_topic])
    done, started = 0, None
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        while done < limit:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            started = started or time.perf_counter()
            _, event = serde.decode(msg.value(), expected="FeatureEvent")
            p = client.post("/predict", json=event["features"]).json()["p"]
            producer.produce(
                out_topic, json.dumps({"id": event["association_id"], "p": p}).encode()
            )
            producer.flush()
            done += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    server.should_exit = True
    thread.join(5)
    return done / elapsed


class PredictionWatch:
    """Reads predictions from the end of the topic: latency per row and first sight of versions
    (``schema="FeatureEvent"``: the relay's forwarded events, latency only).

    While recording it keeps each message's arrival time and bytes, decoded when recording
    stops, and notes no versions (the hot swap is timed outside a recording): it stands in for
    a downstream consumer, which would not share the scorer's two cores, so it does as little
    as it can while a phase runs. Times and bytes go in two lists, not in a tuple each: floats
    and bytes are not tracked by the collector, so a phase's 150,000 rows do not bring on its
    full passes, which stall this thread for tens of milliseconds in a process that holds
    trained models."""

    def __init__(self, bootstrap: str, topic: str, schema: str = "Prediction") -> None:
        self.schema = schema
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "watch",
                "isolation.level": "read_committed",
            }
        )
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
        self.arrived: list[float] = []  # time.time() of each message read while recording
        self.messages: list[bytes] = []  # and the message
        self.first_seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.recording = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            # Waits for the first prediction only, then takes what has arrived with it: a wait
            # for more (consume() waits for a full batch or its timeout) would count as latency.
            first = self.consumer.consume(1, 0.1)
            for msg in first + (self.consumer.consume(499, 0) if first else []):
                if msg.error():
                    continue
                now = time.time()
                if self.recording.is_set():
                    self.arrived.append(now)
                    self.messages.append(msg.value())
                    continue
                _, p = serde.decode(msg.value(), expected=self.schema)
                if "model_version" in p:
                    self.first_seen.setdefault(p["model_version"], now)
        self.consumer.close()

    def start_recording(self) -> None:
        """Forget the rows recorded before and record those read from now on."""
        self.arrived.clear()
        self.messages.clear()
        self.recording.set()

    def stop_recording(self) -> np.ndarray:
        """Stop recording; each recorded row's event time to its arrival (ms), in the order the
        watch read them."""
        self.recording.clear()
        n = len(self.messages)  # each time is appended before its message
        return np.array(
            [
                now * 1000 - serde.decode(value, expected=self.schema)[1]["event_time"]
                for now, value in zip(self.arrived[:n], self.messages[:n], strict=True)
            ]
        )


class EventBytes:
    """FeatureEvent messages for the paced producer, encoded ahead but for their id and event
    time. The producer stands in for the users' producers, which would not share the scorer's
    two cores, so each message costs it a join of bytes rather than an Avro encoding."""

    def __init__(self, rows: list[dict[str, Any]], deployment: str = "credit") -> None:
        self.header = serde.default_serde().header("FeatureEvent")
        self.deployment = write_string(deployment)
        # What follows the event time (the features and the empty attributes), cut from a
        # record whose id and event time are empty and zero.
        start = len(self.header) + len(write_string("")) + len(self.deployment) + len(write_long(0))
        self.tails = [
            serde.encode(
                "FeatureEvent",
                {
                    "association_id": "",
                    "deployment": deployment,
                    "event_time": 0,
                    "features": row,
                    "attributes": {},
                },
            )[start:]
            for row in rows
        ]

    def message(self, i: int, association_id: str, event_time_ms: int) -> bytes:
        """The single-object encoding of row ``i`` (cycling) as this id at this event time."""
        return b"".join(
            (
                self.header,
                write_string(association_id),
                self.deployment,
                write_long(event_time_ms),
                self.tails[i % len(self.tails)],
            )
        )


def paced(producer: Producer, topic: str, rate: int, seconds: float, prefix: str) -> int:
    """Produce fresh events (event_time = now) at a fixed rate; returns the count."""
    events = EventBytes([f for f, _ in credit_rows(2000, seed=99)])
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            aid = f"{prefix}{sent}"
            producer.produce(topic, events.message(sent, aid, int(time.time() * 1000)), aid)
            sent += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    return sent


def latency_buckets(port: int) -> dict[float, float]:
    """The scorer's cumulative latency histogram buckets (upper bound in s -> count)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "streamops_scorer_latency_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound (ms) of the bucket holding quantile q of what was observed in between."""
    counts = {b: after[b] - before.get(b, 0.0) for b in sorted(after)}
    total = counts[float("inf")]
    for bound, n in counts.items():
        if total and n >= q * total:
            return round(bound * 1000, 1)
    return float("nan")


def _paced_process(bootstrap: str, topic: str, rate: int, seconds: float, prefix: str) -> int:
    producer = Producer(KafkaConfig(bootstrap, "bench-paced").producer(linger_ms=0))
    return paced(producer, topic, rate, seconds, prefix)


def paced_elsewhere(bootstrap: str, topic: str, rate: int, seconds: float, prefix: str) -> int:
    """`paced` in a process of its own, so that encoding events does not hold up the watch."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_paced_process, (bootstrap, topic, rate, seconds, prefix))


def measure_at(args, watch: PredictionWatch, topic: str, rate: int, prefix: str) -> dict[str, Any]:
    """Events paced at ``rate`` into ``topic``, as the watch reads them: the p50 and p99 of
    their latencies (ms), and the p99 of each slice of the phase (``p99_by_10s``)."""
    watch.start_recording()
    sent = paced_elsewhere(args.bootstrap, topic, rate, args.seconds, prefix)
    time.sleep(2)
    lat = watch.stop_recording()
    p50, p99 = (round(float(p), 2) for p in np.percentile(lat, [50, 99]))
    slices = p99_by_slice(lat, args.seconds)
    log(
        f"{rate}/s: sent {sent}, measured {len(lat)}, p50 {p50:g} ms, p99 {p99:g} ms "
        f"(p99 by {SLICE_S:g} s: {', '.join(f'{p:g}' for p in slices)} ms)"
    )
    return {"p50": p50, "p99": p99, "p99_by_10s": slices}


def p99_by_slice(lat: np.ndarray, seconds: float) -> list[float]:
    """The p99 (ms) of each consecutive ~SLICE_S seconds of a phase's latencies: how much of
    the phase's p99 a few bursts make (the read order is close to the event order)."""
    parts = np.array_split(lat, max(1, round(seconds / SLICE_S)))
    return [round(float(np.percentile(part, 99)), 2) for part in parts if len(part)]


def relay_floor(args, kafka: KafkaConfig, producer: Producer, tmp: Path) -> dict[str, Any]:
    """The latency floor at 5,000 events/s: the same two hops through the shared runner, with
    the scorer's settings and a pass-through handler (``loadtest.relay --like-scorer``)."""
    prefix = f"br{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(prefix)
    ensure_topics(kafka.admin(), namer, only=LOGICAL)
    cmd = [sys.executable, "-m", "loadtest.relay", "--prefix", prefix]
    cmd += ["--output", namer.predictions, "--group", f"floor-{uuid.uuid4().hex[:6]}"]
    cmd += ["--batch-size", str(args.batch_size), "--like-scorer", "--bootstrap", args.bootstrap]
    # The watch first: one that fails to start would leave the child running otherwise.
    watch = PredictionWatch(args.bootstrap, namer.predictions, schema="FeatureEvent")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=open(tmp / "relay-floor.log", "ab"),  # noqa: SIM115 (the child owns the file)
        stderr=subprocess.STDOUT,
    )
    try:
        paced(producer, namer.events, 200, 4, "warm")  # relay up, group joined
        time.sleep(2)
        floor = measure_at(args, watch, namer.events, 5000, "floor-")
    finally:
        watch.stop.set()
        proc.terminate()
        proc.wait(20)
        AdminClient(kafka.admin()).delete_topics([namer.name(t) for t in LOGICAL])
    return {
        "relay_latency_ms_p50_5k": floor["p50"],
        "relay_latency_ms_p99_5k": floor["p99"],
        "relay_latency_ms_p99_5k_by_10s": floor["p99_by_10s"],
    }


def latency_phase(args, prefix, keys, namer, producer, v1, v2, tmp) -> dict[str, Any]:
    """Latency at fixed rates, then a hot swap under load."""
    # The watch's thread shares this process with the trained models and the drains' leftovers:
    # out of the collector's full passes with them (70-90 ms each, stalling the watch), as the
    # services do with their start-up objects.
    freeze_startup_objects()
    out: dict[str, Any] = {}
    group = f"lat-{uuid.uuid4().hex[:6]}"
    metrics_port = _free_port()
    watch = PredictionWatch(args.bootstrap, namer.predictions)  # first, as in relay_floor
    proc = start_scorer(args, prefix, keys, group, tmp / "latency.log", metrics_port)
    try:
        paced(producer, namer.events, 200, 4, "warm")  # scorer up, replay done, group joined
        time.sleep(2)
        for rate in (1000, 5000):
            before = latency_buckets(metrics_port)
            measured = measure_at(args, watch, namer.events, rate, f"r{rate}-")
            key = "1k" if rate == 1000 else "5k"
            own = bucket_quantile(before, latency_buckets(metrics_port), 0.99)
            out[f"scorer_histogram_p99_{key}_ms_at_most"] = own
            log(f"{rate}/s: the scorer's own histogram (event time to produce): p99 <= {own} ms")
            out[f"latency_ms_p50_{key}"] = measured["p50"]
            out[f"latency_ms_p99_{key}"] = measured["p99"]
            out[f"latency_ms_p99_{key}_by_10s"] = measured["p99_by_10s"]
        feeder = threading.Thread(target=paced, args=(producer, namer.events, 1000, 8, "swap-"))
        feeder.start()
        time.sleep(2)
        swap_producer = Producer(KafkaConfig(args.bootstrap, "bench").producer())
        swap_producer.produce(namer.models, serde.encode("ModelPublished", v2), "credit")
        swap_producer.flush(10)
        time.sleep(1)
        deployed = time.time()
        swap_producer.produce(namer.deployments, deployment_bytes(v2["content"], 2, keys), "credit")
        swap_producer.flush(10)
        feeder.join()
        time.sleep(1)
        seen = watch.first_seen.get(2)
        out["hot_swap_ms"] = round((seen - deployed) * 1000, 1) if seen else -1.0
        log(f"hot swap: {out['hot_swap_ms']} ms from Deployment record to first v2 prediction")
    finally:
        watch.stop.set()
        proc.terminate()
        proc.wait(20)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every phase and write loadtest/results/scorer.json."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_scorer", description=__doc__)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=DRAIN_BATCH)
    p.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="scorers in the group for the headline drain rate (default: one per core)",
    )
    p.add_argument("--baseline-events", type=int, default=3000)
    p.add_argument("--rest-events", type=int, default=1500)
    p.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="per fixed-rate latency phase (its p99 is also given per 10 s)",
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scorer-"))
    keys = tmp / "keys"
    keys.mkdir()
    key = signing.load_private_key(keys / f"{signing.generate_keypair(keys)}.key")
    log("training the gradient-boosted model on builtin:credit (20,000 rows)")
    ds = load_dataset("builtin:credit")
    built = build_model(
        ds,
        name="credit",
        version=1,
        parent_id=None,
        options=TrainOptions(estimator="hgb", trials=1),
    )
    v1 = signed_record(built.content, key)
    v2_content = build_model(
        load_dataset("builtin:credit?seed=7"),
        name="credit",
        version=2,
        parent_id=built.content["model_id"],
        options=TrainOptions(estimator="hgb", trials=1),
    ).content
    v2 = signed_record(v2_content, key)
    specs = built.content["signature_in"]["features"]
    kafka = KafkaConfig(args.bootstrap, "bench")
    producer = Producer(kafka.producer(linger_ms=20))
    results: dict[str, Any] = {
        "events": args.events,
        "batch_size": args.batch_size,
        "max_wait_ms": ScorerSettings.max_wait_ms,
        "commit_interval_ms": ScorerSettings.commit_interval_ms,
        "model": "hgb on builtin:credit (20,000 rows)",
        "latency_seconds": args.seconds,
    }

    drain_prefix = f"bs{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(drain_prefix)
    ensure_topics(kafka.admin(), namer, only=LOGICAL)
    for out in ("baseline-a", "baseline-b"):
        create_topic(kafka.admin(), drain_prefix + out, 6)
    producer.produce(namer.models, serde.encode("ModelPublished", v1), "credit")
    producer.produce(namer.deployments, deployment_bytes(v1["content"], 1, keys), "credit")
    values = event_values(args.events, 3, "e")
    produce_all(producer, namer.events, values[: max(args.baseline_events, args.rest_events)])
    log(f"draining {args.events} events with one scorer (batch {args.batch_size})")
    one = round(drain_rate(args, kafka, keys, v1, values, 1, tmp))
    log(f"one scorer: {one} events/s")
    log(f"draining {args.events} events with {args.processes} scorers in one group")
    results["scorer_processes"] = args.processes
    results["events_per_s"] = round(drain_rate(args, kafka, keys, v1, values, args.processes, tmp))
    results["events_per_s_one_process"] = one
    log(f"{args.processes} scorers: {results['events_per_s']} events/s")
    log(f"baseline (a): hand-written loop over {args.baseline_events} events")
    results["baseline_loop_events_per_s"] = round(
        baseline_loop(
            args,
            namer.events,
            drain_prefix + "baseline-a",
            built.result.pipeline,
            specs,
            args.baseline_events,
        ),
        1,
    )
    log(f"baseline (a): {results['baseline_loop_events_per_s']} events/s")
    log(f"baseline (b): REST model server over {args.rest_events} events")
    results["baseline_rest_events_per_s"] = round(
        baseline_rest(
            args,
            namer.events,
            drain_prefix + "baseline-b",
            built.result.pipeline,
            specs,
            args.rest_events,
        ),
        1,
    )
    log(f"baseline (b): {results['baseline_rest_events_per_s']} events/s")
    # Against the one-process baselines, the one-process figure.
    results["vs_loop"] = round(one / results["baseline_loop_events_per_s"], 1)
    results["vs_rest"] = round(one / results["baseline_rest_events_per_s"], 1)

    lat_prefix = f"bl{uuid.uuid4().hex[:6]}."
    lat_namer = TopicNamer(lat_prefix)
    ensure_topics(kafka.admin(), lat_namer, only=LOGICAL)
    producer.produce(lat_namer.models, serde.encode("ModelPublished", v1), "credit")
    producer.produce(lat_namer.deployments, deployment_bytes(v1["content"], 1, keys), "credit")
    producer.flush(10)
    paced_producer = Producer(kafka.producer(linger_ms=0))  # no batching delay in the figure
    results.update(latency_phase(args, lat_prefix, keys, lat_namer, paced_producer, v1, v2, tmp))
    log("latency floor: the relay (shared runner, scorer's settings, no model) at 5000/s")
    results.update(relay_floor(args, kafka, paced_producer, tmp))
    results["latency_p99_5k_vs_floor"] = round(
        results["latency_ms_p99_5k"] / results["relay_latency_ms_p99_5k"], 2
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scorer.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
