"""Load generator: credit events at a bounded rate into a running system, latency measured.

Scenarios: `steady` (a constant rate), `burst` (alternating 2 s at 4x the rate and 2 s at a
quarter of it), and each drift kind of `loadtest.drift_scenarios` (`mean_shift`,
`variance_doubled`, `new_category`, `concept_drift`; the change starts halfway through; actuals
follow their events after `--label-delay` events). Every run is bounded by `--count` events and
`--duration` seconds, whichever comes first, then waits at most `--drain-s` for the predictions.

A consumer reads `predictions` from the end while events go out, matching rows of this run by
association id: event-to-prediction latency (the prediction read downstream minus the event's
`event_time`) and throughput (events produced and predictions read per second). Writes a JSON
report and a PNG plot (latency and throughput over time).

    python -m loadtest.loadgen --scenario steady --rate 2000 --count 20000 --deployment credit
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer

from loadtest.drift_scenarios import CreditColumns, Scenario, apply_change, plain
from services.common import serde
from services.common.kafka_config import KafkaConfig
from services.common.settings import CommonSettings, load_settings
from services.common.topics import TopicNamer
from services.trainer.credit import CREDIT_CATEGORICAL, CREDIT_FEATURES

SCENARIOS = ("steady", "burst", "mean_shift", "variance_doubled", "new_category", "concept_drift")
BURST_PERIOD_S = 2.0
SLICES_PER_S = 100
ROOT = Path(__file__).resolve().parents[1]
EVENT_HEADER = [serde.fingerprint_header("FeatureEvent")]
ACTUAL_HEADER = [serde.fingerprint_header("Actual")]


def rate_at(scenario: str, rate: float, elapsed_s: float) -> float:
    """Events per second the scenario asks for `elapsed_s` into the run."""
    if scenario != "burst":
        return rate
    high = int(elapsed_s // BURST_PERIOD_S) % 2 == 0
    return rate * 4 if high else rate / 4


def columns_for(scenario: str, count: int, seed: int) -> CreditColumns:
    """The credit stream of the run, with the scenario's change applied from halfway."""
    columns = CreditColumns.generate(seed, count)
    if scenario in ("steady", "burst"):
        return columns
    half = count // 2
    baseline = {
        "features": [
            {"name": n, "mean": float(np.mean(v[:half])), "std": float(np.std(v[:half]))}
            for n, v in columns.features.items()
            if n not in CREDIT_CATEGORICAL
        ]
    }
    return apply_change(Scenario(scenario, seed, count, half), columns, baseline)


class PredictionWatch:
    """Reads predictions from the end; keeps the arrival time of this run's rows."""

    def __init__(self, conf: dict[str, Any], topic: str, run_id: str) -> None:
        self.run_id = run_id
        self.arrived: dict[str, float] = {}
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self._consumer = Consumer(
            # A group the client principal owns on the secured broker (kafka_acls).
            {
                **conf,
                "group.id": f"streamops-client-loadgen-{run_id}",
                "auto.offset.reset": "latest",
            }
        )
        self._consumer.subscribe([topic], on_assign=lambda _c, _p: self.assigned.set())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # A short timeout: consume() waits for a full batch otherwise, counted as latency.
            for msg in self._consumer.consume(1000, 0.002):
                if msg.error() or not (msg.key() or b"").startswith(self.run_id.encode()):
                    continue
                _name, row = serde.decode(msg.value())
                if row.get("role", "champion") == "champion":
                    self.arrived.setdefault(row["association_id"], time.time())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Produce, watch, and summarise one bounded run."""
    settings = load_settings(CommonSettings, "tests", os.environ)
    # What a user's application does (events, actuals, reading predictions): the client's login.
    kafka = KafkaConfig.from_settings(settings, "loadgen", principal="client")
    namer = TopicNamer(settings.topic_prefix)
    run_id = f"lg{uuid.uuid4().hex[:8]}"
    columns = columns_for(args.scenario, args.count, args.seed)
    watch = PredictionWatch(
        kafka.consumer(f"streamops-client-loadgen-{run_id}"), namer.predictions, run_id
    )
    if not watch.assigned.wait(30):
        raise SystemExit(f"loadgen: no partitions of {namer.predictions} in 30 s; is Kafka up?")
    time.sleep(1.0)  # the watch's first fetch at `latest` happens before events go out
    producer = Producer(kafka.producer(linger_ms=1))
    sent_at: dict[str, int] = {}
    started = time.time()
    produced = 0
    print(
        f"loadgen: {args.scenario} at {args.rate:g}/s, at most {args.count} events "
        f"or {args.duration:g} s, deployment {args.deployment!r} on {settings.kafka_bootstrap}",
        flush=True,
    )
    next_report = max(1, args.count // 10)
    owed, last = 0.0, started
    while produced < args.count and time.time() - started < args.duration:
        tick = time.time()
        # Every slice sends what the scenario's current rate has accrued since the last one.
        owed += rate_at(args.scenario, args.rate, tick - started) * (tick - last)
        last = tick
        size = int(owed)
        owed -= size
        for i in range(produced, min(produced + size, args.count)):
            sent_at[f"{run_id}-{i}"] = produce_event(producer, namer, args, columns, run_id, i)
        produced = min(produced + size, args.count)
        producer.poll(0)
        if produced >= next_report:
            print(f"  {produced} events, {len(watch.arrived)} predictions", flush=True)
            next_report += max(1, args.count // 10)
        time.sleep(max(0.0, tick + 1 / SLICES_PER_S - time.time()))
    producer.flush(30)
    produce_s = time.time() - started
    deadline = time.time() + args.drain_s
    while len(watch.arrived) < produced and time.time() < deadline:
        time.sleep(0.1)
    watch.close()
    return summarise(args, run_id, sent_at, watch.arrived, started, produce_s)


def produce_event(
    producer: Producer,
    namer: TopicNamer,
    args: argparse.Namespace,
    columns: CreditColumns,
    run_id: str,
    i: int,
) -> int:
    """Send event `i` (and the actual of event `i - label_delay`); its event time in ms."""
    aid = f"{run_id}-{i}"
    now_ms = int(time.time() * 1000)
    event = {
        "association_id": aid,
        "deployment": args.deployment,
        "event_time": now_ms,
        "features": {n: plain(columns.features[n][i]) for n in CREDIT_FEATURES},
        "attributes": {"loadgen": run_id},
    }
    producer.produce(namer.events, serde.encode("FeatureEvent", event), aid, headers=EVENT_HEADER)
    if args.label_delay and i >= args.label_delay:
        j = i - args.label_delay
        actual = {
            "association_id": f"{run_id}-{j}",
            "deployment": args.deployment,
            "label": str(columns.labels[j]),
            "actual_time": now_ms,
        }
        producer.produce(
            namer.actuals, serde.encode("Actual", actual), actual["association_id"],
            headers=ACTUAL_HEADER,
        )  # fmt: skip
    return now_ms


def summarise(
    args: argparse.Namespace,
    run_id: str,
    sent_at: dict[str, int],
    arrived: dict[str, float],
    started: float,
    produce_s: float,
) -> dict[str, Any]:
    """The JSON report: counts, rates, latency percentiles and per-second series."""
    latency = {a: arrived[a] * 1000 - sent_at[a] for a in arrived if a in sent_at}
    per_second: dict[int, list[float]] = defaultdict(list)
    for aid, ms in latency.items():
        per_second[int(arrived[aid] - started)].append(ms)
    sent_per_second: dict[int, int] = defaultdict(int)
    for ms in sent_at.values():
        sent_per_second[int(ms / 1000 - started)] += 1
    seconds = range(max([*per_second, *sent_per_second, 0]) + 1)
    values = np.array(list(latency.values())) if latency else np.array([np.nan])
    return {
        "run_id": run_id,
        "scenario": args.scenario,
        "deployment": args.deployment,
        "rate_target": args.rate,
        "events": len(sent_at),
        "predictions": len(latency),
        "lost_or_late": len(sent_at) - len(latency),
        "produce_seconds": round(produce_s, 2),
        "events_per_s": round(len(sent_at) / produce_s, 1) if produce_s else 0.0,
        "latency_ms_p50": round(float(np.nanpercentile(values, 50)), 2),
        "latency_ms_p95": round(float(np.nanpercentile(values, 95)), 2),
        "latency_ms_p99": round(float(np.nanpercentile(values, 99)), 2),
        "series": [
            {
                "second": s,
                "events": sent_per_second.get(s, 0),
                "predictions": len(per_second.get(s, [])),
                "latency_ms_p50": _pct(per_second.get(s), 50),
                "latency_ms_p99": _pct(per_second.get(s), 99),
            }
            for s in seconds
        ],
    }


def _pct(values: list[float] | None, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency (p50, p99) and throughput (events, predictions) per second, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["series"]
    t = [s["second"] for s in series]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for key, label in (("latency_ms_p50", "p50"), ("latency_ms_p99", "p99")):
        top.plot(t, [s[key] if s[key] is not None else np.nan for s in series], label=label)
    top.set_ylabel("event → prediction (ms)")
    top.legend()
    top.set_title(
        f"{report['scenario']}: {report['events']} events, {report['predictions']} predictions"
    )
    bottom.plot(t, [s["events"] for s in series], label="events/s produced")
    bottom.plot(t, [s["predictions"] for s in series], label="predictions/s read")
    bottom.set_xlabel("seconds since start")
    bottom.set_ylabel("per second")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, write the JSON and the PNG."""
    p = argparse.ArgumentParser(
        prog="python -m loadtest.loadgen", description=__doc__.split("\n")[0]
    )
    p.add_argument("--scenario", choices=SCENARIOS, default="steady")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second (burst: mean)")
    p.add_argument("--count", type=int, default=10_000, help="at most this many events")
    p.add_argument("--duration", type=float, default=60.0, help="at most this many seconds")
    p.add_argument("--drain-s", type=float, default=30.0, help="wait this long for predictions")
    p.add_argument("--deployment", default="credit")
    p.add_argument(
        "--label-delay", type=int, default=0, help="send actuals N events later (0: none)"
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", default=str(ROOT / "var" / "loadgen"), help="report directory")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.count < 1 or args.duration <= 0 or args.count > 10_000_000:
        p.error("--rate > 0, 1 <= --count <= 10,000,000 and --duration > 0 are required")
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"loadgen-{args.scenario}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, stem.with_suffix(".png"))
    print(
        f"loadgen: {report['events']} events at {report['events_per_s']}/s, "
        f"{report['predictions']} predictions, latency p50 {report['latency_ms_p50']} ms "
        f"p99 {report['latency_ms_p99']} ms; wrote {stem}.json and {stem}.png"
    )
    return 0 if report["predictions"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
