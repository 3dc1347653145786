"""Drain rate of the real drift service on a pre-filled events + predictions stream.

Measured like the scorer's: the topics are filled first, then ``python -m services.drift``
processes start with a fresh group (one, or a group of several with ``--shards``); the rate
runs from the moment every process has stored offsets to the moment the offsets they store in
Redis (with their window state, one transaction per micro-batch) reach the end of every
partition. Each event comes with its champion prediction, so the service reads two
messages per event; the rate is given in events (and messages) per second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from loadtest.drift_scenarios import ScenarioStream
from services.common import serde
from services.common.admin import ensure_topics
from services.common.kafka_config import KafkaConfig
from services.common.producing import produce_waiting
from services.common.progress import Progress
from services.common.settings import CommonSettings
from services.common.topics import TopicNamer
from services.drift.config import DriftSettings

ROOT = Path(__file__).resolve().parents[1]
LOGICAL = ["events", "predictions", "actuals", "models", "deployments", "drift", "breaches"]
LOGICAL += ["deadletter"]


@dataclass(frozen=True)
class DrainResult:
    """Events and messages per second, and what the service did with them."""

    events: int
    seconds: float
    events_per_s: float
    messages_per_s: float
    windows_closed: int


def log(text: str) -> None:
    """Progress for the person running the benchmark."""
    print(f"[bench_drift] {text}", flush=True)


def prefill(producer: Producer, namer: TopicNamer, stream: ScenarioStream) -> None:
    """Produce every event and its prediction (keyed by association id), then wait for acks."""
    n = stream.scenario.events
    progress = Progress("pre-filling events + predictions", n)
    for i in range(n):
        for topic, name, record in (
            (namer.events, "FeatureEvent", stream.event(i)),
            (namer.predictions, "Prediction", stream.prediction(i)),
        ):
            produce_waiting(producer, topic, serde.encode(name, record), record["association_id"])
        if i % 5000 == 0:
            progress.update(i)
    if producer.flush(120):
        raise SystemExit("pre-fill not acknowledged within 120 s")
    progress.update(n)
    progress.done()


def stored_total(client: redis.Redis, namespace: str, topic: str | None = None) -> int:
    """Sum of the next offsets the service stored in Redis (fresh topics start at 0), of every
    topic or of ``topic`` only."""
    offsets = client.hgetall(f"{namespace}:offsets")  # "topic|partition" -> next offset
    return sum(
        int(v)
        for k, v in offsets.items()
        if topic is None or k.decode().rpartition("|")[0] == topic
    )


def namespaces(group: str, processes: int) -> list[str]:
    """Where each process of a drift group keeps its state (the service's own naming)."""
    return [
        DriftSettings(group_id=group, shards=processes, shard=i).namespace for i in range(processes)
    ]


def start_drift(
    settings: CommonSettings,
    prefix: str,
    group: str,
    args: Any,
    log_path: Path,
    max_wait_ms: int | None = 5,
    shard: tuple[int, int] | None = None,
    keys: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A drift service process on the benchmark topics, with count windows (``max_wait_ms``
    None: the service's default batch wait; ``shard``: (index, shards) in a sharded group;
    ``keys``: the directory of the model key's .pub, the registry key's in ``keys/registry``)."""
    flags = {
        "kafka-bootstrap": settings.kafka_bootstrap,
        "redis-host": settings.redis_host,
        "redis-port": settings.redis_port,
        "topic-prefix": prefix,
        "group-id": group,
        "window-count": args.window,
        "batch-size": args.drain_batch_size,
        "metrics-port": 0,
    }
    if max_wait_ms is not None:
        flags["max-wait-ms"] = max_wait_ms
    if shard is not None:
        flags["shard"], flags["shards"] = shard
    if keys is not None:
        flags["trusted-keys-dir"], flags["deployment-keys-dir"] = keys, keys / "registry"
    cmd = [sys.executable, "-m", "services.drift"]
    cmd += [a for k, v in flags.items() for a in (f"--{k}", str(v))]
    # Logged in as drift on the broker whose var dir the settings name (from the environment).
    kafka = KafkaConfig.local(settings.kafka_bootstrap, settings.var_dir, "drift", "drift")
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **kafka.environment()),
        stdout=open(log_path, "ab"),  # noqa: SIM115 (the child owns the file)
        stderr=subprocess.STDOUT,
    )


def drain(
    settings: CommonSettings,
    records: list[dict[str, Any]],
    stream: ScenarioStream,
    args: Any,
    tmp: Path,
    groups: tuple[int, ...] = (1,),
) -> list[DrainResult]:
    """Fill fresh topics, then drain them once per entry of ``groups`` (the number of drift
    processes, each run a fresh group); topics removed after."""
    prefix = f"bd{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(prefix)
    kafka = KafkaConfig.from_settings(settings, "bench-drift", principal="admin")
    ensure_topics(kafka.admin(), namer, only=LOGICAL)
    producer = Producer(kafka.producer(linger_ms=20))
    producer.produce(namer.models, serde.encode("ModelPublished", records[0]), "credit")
    producer.produce(namer.deployments, serde.encode("Deployment", records[1]), "credit")
    prefill(producer, namer, stream)
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_secret().reveal() or None,
    )
    try:
        return [_drain_once(settings, client, prefix, stream, args, tmp, n) for n in groups]
    finally:
        client.close()
        AdminClient(kafka.admin()).delete_topics([namer.name(t) for t in LOGICAL])


def _drain_once(
    settings: CommonSettings,
    client: redis.Redis,
    prefix: str,
    stream: ScenarioStream,
    args: Any,
    tmp: Path,
    processes: int,
) -> DrainResult:
    """Start a fresh group of ``processes`` drift processes (``--shards``) on the filled topics
    and time it to the end: from the moment every process has stored offsets."""
    group = f"streamops-drift-bench-{uuid.uuid4().hex[:6]}"  # a group drift owns
    group_settings = DriftSettings(group_id=group, shards=processes)
    group_ns = group_settings.group_namespace
    spaces = namespaces(group, processes)
    closed = f"{group_settings.closed_namespace}:closed:credit"
    total = 2 * stream.scenario.events
    logs = [tmp / f"drift-{processes}-{i}.log" for i in range(processes)]
    log(f"draining {total} messages with {processes} drift process(es) (logs: {logs[0]}...)")
    procs = [
        start_drift(
            settings,
            prefix,
            group,
            args,
            path,
            shard=None if processes == 1 else (i, processes),
            keys=tmp,  # bench_drift keeps its keys there
        )
        for i, path in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + args.drain_timeout
        first_t = first_n = None
        while time.monotonic() < deadline:
            for proc, path in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise SystemExit(f"drift service exited with {proc.returncode}; see {path}")
            stored = [stored_total(client, ns) for ns in spaces]
            done = sum(stored)
            if first_t is None and all(stored):  # every process has started
                first_t, first_n = time.monotonic(), done
            if done >= total and first_t is not None:
                seconds = max(time.monotonic() - first_t, 1e-9)
                messages = (done - first_n) / seconds
                if processes > 1:
                    time.sleep(1.0)  # process 0 merges the last windows
                windows = client.hlen(closed)
                return DrainResult(stream.scenario.events, seconds, messages / 2, messages, windows)
            time.sleep(0.05)
        raise SystemExit(f"drift did not drain in {args.drain_timeout} s; see {logs}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        for keys in _batched(client.scan_iter(match=f"{group_ns}:*", count=5000), 5000):
            client.delete(*keys)


def _batched(items: Any, size: int) -> Any:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
