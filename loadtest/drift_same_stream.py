"""Two scorers and drift on one live stream: does drift keep up with them?

The drain rates compare each service alone, with the machine to itself. Here they run together,
as in production: fresh topics, two scorer processes in one group and a drift group of
``--same-stream-drift-processes`` (default one, the service's default; count windows, like the
drain) start first. Then, for each rate in turn, a separate process produces pre-encoded events
at that rate (linger 5 ms, librdkafka's default), the scorers turn them into predictions, and
drift reads both topics. Every tenth of a second (a fixed cadence) the benchmark samples the
topics' end offsets and the offsets drift stored in Redis with its state. Each run reports the
backlogs, when each side was done after the feed's last acknowledgement, and the CPU time each
side used per event (from /proc: what it costs, whatever share of the machine it got). A side
kept up at a rate when it was done within half a second (of the feed for the scorers, of the
scorers for drift); drift keeps up with the scorers when it kept up at every rate they kept up
at.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from loadtest.bench_scorer import DRAIN_BATCH, start_scorer, wait_members
from loadtest.drift_drain import LOGICAL, log, namespaces, start_drift, stored_total
from loadtest.drift_scenarios import ScenarioStream
from services.common import serde
from services.common.admin import ensure_topics
from services.common.kafka_config import KafkaConfig
from services.common.settings import CommonSettings
from services.common.topics import TopicNamer
from services.drift.config import DriftSettings

CATCH_UP_S = 0.5  # done within this long after the feed (scorers) or the scorers (drift)
SAMPLE_S = 0.1  # the samples' cadence: a side's done time is known to within this


def feed(
    bootstrap: str, topic: str, payloads: list[tuple[str, bytes]], rate: int
) -> tuple[float, float]:
    """Produce ``payloads`` at ``rate`` per second; returns the wall-clock times it started and
    had every one acknowledged."""
    producer = Producer(KafkaConfig(bootstrap, "bench-feed").producer(linger_ms=5))
    sent, started, began = 0, time.monotonic(), time.time()
    while sent < len(payloads):
        due = min(len(payloads), int((time.monotonic() - started) * rate))
        while sent < due:
            key, value = payloads[sent]
            try:
                producer.produce(topic, value, key)
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.002)
    if producer.flush(60):
        raise SystemExit("the feed was not acknowledged within 60 s")
    return began, time.time()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process (all its threads) has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _end_total(consumer: Consumer, topic: str) -> int:
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), 5)[1] for p in parts)


def same_stream(
    settings: CommonSettings,
    records: list[dict[str, Any]],
    keys: Path,
    stream: ScenarioStream,
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    """Feed each rate in turn to the same two scorers and drift; the figures for drift.json."""
    prefix = f"bs{uuid.uuid4().hex[:6]}."
    namer = TopicNamer(prefix)
    kafka = KafkaConfig.from_settings(settings, "bench-same-stream")
    ensure_topics(kafka.admin(), namer, only=LOGICAL)
    producer = Producer(kafka.producer())
    producer.produce(namer.models, serde.encode("ModelPublished", records[0]), "credit")
    producer.produce(namer.deployments, serde.encode("Deployment", records[1]), "credit")
    producer.flush(10)
    bootstrap = settings.kafka_bootstrap
    # The scorers batch as in their own drain (bench_scorer), whatever drift's batch size is.
    scorer_args = argparse.Namespace(bootstrap=bootstrap, batch_size=DRAIN_BATCH)
    scorers, drift_group = f"same-{uuid.uuid4().hex[:6]}", f"same-drift-{uuid.uuid4().hex[:6]}"
    procs = [
        start_scorer(scorer_args, prefix, keys, scorers, tmp / f"same-{i}.log", 0, f"{scorers}-{i}")
        for i in range(2)
    ]
    # Both services with their default batch waits, as deployed.
    shards = args.same_stream_drift_processes
    logs = [tmp / f"same-drift-{i}.log" for i in range(shards)]
    for i, path in enumerate(logs):
        shard = None if shards == 1 else (i, shards)
        procs.append(start_drift(settings, prefix, drift_group, args, path, None, shard, keys))
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_secret().reveal() or None,
    )
    group_ns = DriftSettings(group_id=drift_group).group_namespace
    spaces = namespaces(drift_group, shards)
    line = Line(bootstrap, client, spaces, namer, procs, scorers=2)
    runs = []
    try:
        wait_members(bootstrap, scorers, 2)
        if shards == 1:
            wait_members(bootstrap, drift_group, 1)
        else:  # a shard assigns itself its partitions: no group membership to wait for
            wait_logged(logs, "assigned", args.drain_timeout)
        log(
            f"(c) one live stream: two scorers and {shards} drift process(es) ready (logs in {tmp})"
        )
        for rate in args.same_stream_rates:
            runs.append(line.run(stream, rate, args.same_stream_seconds, args.drain_timeout))
        # Each process's last window is still open (and may be one short of its share).
        reports = line.reports(line.fed // args.window - 2 * shards, args.drain_timeout)
        log(f"drift reported {reports} windows of {args.window} events for {line.fed} events")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        line.probe.close()
        for key in client.scan_iter(match=f"{group_ns}:*", count=5000):
            client.delete(key)
        client.close()
        AdminClient(kafka.admin()).delete_topics([namer.name(t) for t in LOGICAL])
    return {
        "same_stream_seconds": args.same_stream_seconds,
        "same_stream_drift_processes": shards,
        "same_stream_reports": reports,
        "same_stream_runs": runs,
        "same_stream_kept_up": kept_up(runs),
    }


def wait_logged(paths: list[Path], text: str, timeout_s: float) -> None:
    """Until every log file holds ``text``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(p.exists() and text in p.read_text(errors="replace") for p in paths):
            return
        time.sleep(0.25)
    raise SystemExit(f"drift processes not ready within {timeout_s:.0f} s: see {paths}")


def kept_up(runs: list[dict[str, Any]]) -> bool | None:
    """Drift kept up at every rate the scorers kept up at (None: the scorers kept up at none)."""
    theirs = [r for r in runs if r["scorers_done_after_feed_s"] <= CATCH_UP_S]
    return all(r["drift_after_scorers_s"] <= CATCH_UP_S for r in theirs) if theirs else None


class Line:
    """The services' topics, drift's stored offsets, and the running processes, sampled."""

    def __init__(
        self,
        bootstrap: str,
        client: redis.Redis,
        namespaces: list[str],
        namer: TopicNamer,
        procs: list[subprocess.Popen[bytes]],
        scorers: int,
    ) -> None:
        self.bootstrap, self.client, self.namespaces = bootstrap, client, namespaces
        self.namer, self.procs = namer, procs  # the scorers, then drift's processes
        self.scorers = scorers
        self.probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-same-probe"})
        self.fed = 0  # events fed by the runs before

    def run(
        self, stream: ScenarioStream, rate: int, seconds: float, timeout_s: float
    ) -> dict[str, Any]:
        """Feed ``rate`` events/s for ``seconds``; when each side was done after the feed."""
        n = int(rate * seconds)
        if n > stream.scenario.events:
            raise SystemExit(f"the stream holds {stream.scenario.events} events, not {n}")
        log(f"{rate}/s: encoding {n} events, then feeding them for {seconds:g} s")
        payloads = []
        for i in range(n):
            event = stream.event(i) | {"association_id": f"r{rate}-{i}"}  # new ids each run
            payloads.append((event["association_id"], serde.encode("FeatureEvent", event)))
        target = self.fed + n
        cpu = [cpu_seconds(p.pid) for p in self.procs]
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            fed = pool.apply_async(feed, (self.bootstrap, self.namer.events, payloads, rate))
            samples = self._sample(target, timeout_s)
            began, acked = fed.get(timeout=60)
        used = [cpu_seconds(p.pid) - before for p, before in zip(self.procs, cpu, strict=True)]
        k = self.scorers  # us per event, each side's processes together
        scorers_cpu, drift_cpu = sum(used[:k]) / n * 1e6, sum(used[k:]) / n * 1e6
        self.fed = target
        scorers_done = next(s[0] for s in samples if s[1] >= target and s[2] <= 0) - acked
        drift_done = samples[-1][0] - acked
        behind = max(drift_done - scorers_done, 0.0)
        rewriting = sum(s[5] for s in samples) * SAMPLE_S
        log(
            f"{rate}/s: fed {n} in {acked - began:.1f} s; done after the feed: scorers "
            f"{scorers_done:.2f} s, drift {drift_done:.2f} s ({behind:.2f} s after them); CPU "
            f"per event: scorers {scorers_cpu:.1f} us, drift {drift_cpu:.1f} us"
            + (f"; Redis rewrote its append-only file for ~{rewriting:.1f} s" if rewriting else "")
        )
        return {
            "rate": rate,
            "events": n,
            "feed_s": round(acked - began, 2),
            "scorers_done_after_feed_s": round(scorers_done, 2),
            "drift_done_after_feed_s": round(drift_done, 2),
            "drift_after_scorers_s": round(behind, 2),
            "max_scorer_backlog": max(int(s[2]) for s in samples),
            "max_drift_backlog": max(int(max(s[3], s[4])) for s in samples),
            "scorers_cpu_us_per_event": round(scorers_cpu, 1),
            "drift_cpu_us_per_event": round(drift_cpu, 1),
            # Redis rewriting its append-only file takes a core for seconds: the misses at the
            # highest rates have fallen during one (docs/performance.md).
            "redis_rewriting_s": round(rewriting, 1),
        }

    def _sample(self, target: int, timeout_s: float) -> list[tuple[float, ...]]:
        """(time, events, scorer backlog, drift events backlog, drift predictions backlog,
        1 if Redis is rewriting its append-only file else 0)."""
        samples: list[tuple[float, ...]] = []
        started = time.monotonic()
        while True:
            t = time.time()
            events = _end_total(self.probe, self.namer.events)
            predictions = _end_total(self.probe, self.namer.predictions)
            drift_events = self._stored(self.namer.events)
            drift_predictions = self._stored(self.namer.predictions)
            rewriting = int(self.client.info("persistence")["aof_rewrite_in_progress"])
            samples.append(
                (
                    t,
                    events,
                    events - predictions,
                    events - drift_events,
                    predictions - drift_predictions,
                    rewriting,
                )
            )
            if min(predictions, drift_events, drift_predictions) >= target:
                return samples
            waited = time.monotonic() - started
            if waited > timeout_s or any(p.poll() is not None for p in self.procs):
                raise SystemExit(f"same-stream run stopped after {waited:.0f} s at {samples[-1]}")
            # A fixed cadence: the sampling's own time does not stretch the interval.
            time.sleep(max(0.0, started + len(samples) * SAMPLE_S - time.monotonic()))

    def reports(self, expected: int, timeout_s: float) -> int:
        """The DriftReports on the drift topic once at least ``expected`` are there and no more
        came for a second (a sharded group's are merged after its processes are done), or
        after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        last, found = -1, _end_total(self.probe, self.namer.drift)
        while (found < expected or found != last) and time.monotonic() < deadline:
            time.sleep(1.0)
            last, found = found, _end_total(self.probe, self.namer.drift)
        return found

    def _stored(self, topic: str) -> int:
        """The offsets drift's processes stored for a topic, together."""
        return sum(stored_total(self.client, ns, topic) for ns in self.namespaces)
