"""Alerting benchmark: breach-to-webhook latency and deliveries per second, each with a baseline.

(a) Latency, `group_wait` 0: one breach at a time (each for a new deployment, so each opens a
    group and notifies at once), from the breach being produced to the signed webhook
    arriving at a receiver on 127.0.0.1. Baseline side by side: the same breaches read by a bare
    confluent-kafka consumer (the transport's own produce-to-consume latency).
(b) Throughput: `--groups` breaches for as many deployments produced at once; deliveries per
    second from the first webhook to the last. Baseline: the bench process itself signing and
    POSTing the same number of payloads to the same receiver with the same concurrency.

Real broker and Redis from the STREAMOPS_* settings; the service runs through
`services.cli.demo_alerting` (the only way to deliver to loopback). Writes
loadtest/results/alerting.json.

    python -m loadtest.bench_alerting [--latency-n 200] [--groups 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from confluent_kafka import Consumer, Producer

from services.alerting.webhook_signing import sign
from services.common import serde
from services.common.settings import CommonSettings, load_settings
from tests.alerting_support import SECRET, Alerting, breach, send_breaches, write_config
from tests.kafka_support import make_topics
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results" / "alerting.json"


class TransportProbe:
    """A bare consumer on the breaches topic noting when each breach id arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-probe-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "latest",
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.subscribe([topic], on_assign=lambda _c, _p: self._assigned.set())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            self.seen[serde.decode(msg.value())[1]["breach_id"]] = time.time()

    def wait_assigned(self) -> None:
        """Wait for the partitions (and a moment for the first fetch at `latest`)."""
        if not self._assigned.wait(30):
            raise RuntimeError("the probe consumer got no partitions in 30 s; is Kafka up?")
        time.sleep(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def latency(bootstrap: str, n: int, work: Path) -> dict[str, Any]:
    """(a): n breaches one by one; webhook and bare-consumer latencies."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    namer = make_topics(bootstrap, prefix, ["breaches", "deployments", "retrain", "deadletter"])
    rx = Receiver(SECRET)
    cfg = write_config(work / "latency.yaml", {"ops": rx.url}, group_wait="0s")
    service = Alerting(bootstrap, prefix, cfg, work / "alerting-latency.log", tick_s=0.25).start()
    probe = TransportProbe(bootstrap, namer.breaches)
    probe.wait_assigned()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0}
    )
    webhook, transport = [], []
    try:
        for i in range(n):
            b = breach(deployment=f"lat{i}")
            sent = time.time()
            producer.produce(namer.breaches, serde.encode("ThresholdBreach", b), b"lat")
            producer.flush(10)
            got = rx.wait_for(lambda d, k=i: len(d) > k, timeout_s=30)
            webhook.append((got[i].at - sent) * 1000)
            deadline = time.monotonic() + 5
            while b["breach_id"] not in probe.seen and time.monotonic() < deadline:
                time.sleep(0.001)
            transport.append((probe.seen.get(b["breach_id"], time.time()) - sent) * 1000)
            if (i + 1) % 50 == 0:
                print(f"  latency: {i + 1}/{n} breaches", flush=True)
    finally:
        probe.close()
        service.stop()
        rx.close()
    return {
        "latency_n": n,
        "breach_to_webhook_ms_p50": round(float(np.percentile(webhook, 50)), 1),
        "breach_to_webhook_ms_p99": round(float(np.percentile(webhook, 99)), 1),
        "bare_consumer_ms_p50": round(float(np.percentile(transport, 50)), 1),
        "bare_consumer_ms_p99": round(float(np.percentile(transport, 99)), 1),
    }


async def _direct_posts(url: str, bodies: list[bytes], concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(i: int, body: bytes) -> None:
            async with slots:
                headers = sign(SECRET, f"msg_direct_{i}", int(time.time()), body)
                (await client.post(url, content=body, headers=headers)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        return time.perf_counter() - started


def throughput(bootstrap: str, groups: int, work: Path, concurrency: int) -> dict[str, Any]:
    """(b): `groups` notifications at once, vs the bench POSTing them itself."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    namer = make_topics(bootstrap, prefix, ["breaches", "deployments", "retrain", "deadletter"])
    rx = Receiver(SECRET)
    cfg = write_config(work / "throughput.yaml", {"ops": rx.url}, group_wait="0s")
    service = Alerting(
        bootstrap,
        prefix,
        cfg,
        work / "alerting-throughput.log",
        delivery_concurrency=concurrency,
    ).start()
    try:
        print(f"  throughput: {groups} breaches for {groups} deployments", flush=True)
        flood = [breach(deployment=f"g{i}") for i in range(groups)]
        send_breaches(bootstrap, namer.breaches, flood)
        got = rx.wait_for(lambda d: len(d) >= groups, timeout_s=600)
        span = max(got[-1].at - got[0].at, 1e-9)
        bodies = [d.body for d in got[:groups]]
    finally:
        service.stop()
    try:
        direct_s = asyncio.run(_direct_posts(rx.url, bodies, concurrency))
    finally:
        rx.close()
    service_rate, direct_rate = groups / span, groups / direct_s
    return {
        "groups": groups,
        "delivery_concurrency": concurrency,
        "deliveries_per_s": round(service_rate, 1),
        "direct_posts_per_s": round(direct_rate, 1),
        "service_vs_direct_ratio": round(service_rate / direct_rate, 3),
    }


def main() -> int:
    """Run both parts and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    settings = load_settings(CommonSettings, "tests", os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-alerting-") as tmp:
        work = Path(tmp)
        print(f"==> alerting latency, group_wait 0 ({args.latency_n} breaches)", flush=True)
        result = latency(settings.kafka_bootstrap, args.latency_n, work)
        print(f"==> alerting deliveries per second ({args.groups} notifications)", flush=True)
        result.update(throughput(settings.kafka_bootstrap, args.groups, work, args.concurrency))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"  {key:28} {value}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
