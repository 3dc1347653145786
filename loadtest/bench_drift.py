"""Drift benchmark: detection quality on seeded scenarios, and the service's drain rate.

(a) Detection quality, in process (``loadtest.drift_quality``): a champion trained on
builtin:credit, count windows of ``--window`` events, the statistics' suggested thresholds
(``loadtest.drift_champion``) and the service's default error-stream detector. No-drift runs
over several seeds give the false-alarm rate; each drift scenario (mean shift, variance,
new category, concept drift) runs on the first seeds with the drift starting at window
``--pre-windows`` and gives the windows to detection (start window = 0).
(b) Throughput on the real broker and Redis (``loadtest.drift_drain``): the drift service
draining a pre-filled events + predictions stream, compared with the scorer's drain rate.
(c) Keeping up on one live stream (``loadtest.drift_same_stream``): two scorers and a group of
``--same-stream-drift-processes`` drift processes together, fed at each of
``--same-stream-rates`` events/s; at every rate the scorers keep up at, drift must be done
within half a second of them.
Writes loadtest/results/drift.json.

    python -m loadtest.bench_drift                 # Kafka and Redis from STREAMOPS_* settings
    python -m loadtest.bench_drift --skip-drain    # quality only, no broker needed
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy.stats import beta

from loadtest.drift_champion import (
    bench_thresholds,
    deployment_record,
    train_champion,
)
from loadtest.drift_drain import drain, log
from loadtest.drift_quality import clean_windows, detection_delay, run_scenario
from loadtest.drift_same_stream import CATCH_UP_S, same_stream
from loadtest.drift_scenarios import SCENARIOS, CreditColumns, Scenario, ScenarioStream
from services.common import deployment_verifier, signing
from services.common.settings import CommonSettings, load_settings
from services.drift.config import DriftSettings
from services.drift.detectors import DEFAULT_PARAMS
from services.trainer.publisher import signed_record

RESULTS = Path(__file__).resolve().parent / "results"
DRIFTS = [s for s in SCENARIOS if s != "no_drift"]
TARGETS: dict[str, Any] = {
    "events_per_s": 50_000,  # aim 100,000
    "same_stream_catch_up_s": CATCH_UP_S,
    "false_alarm_rate": 0.01,
    "detection_delay_windows": {
        "mean_shift": 1,
        "variance_doubled": 1,
        "new_category": 1,
        "concept_drift": 2,  # counted from the window the first drifted label arrives in
    },
}


def quality(args: argparse.Namespace, champion: Any, records: list[dict]) -> dict[str, Any]:
    """False alarms without drift, and windows to detection per scenario and seed."""
    w = args.window
    seeds = [args.seed + k for k in range(args.no_drift_seeds)]
    no_drift_events = args.no_drift_windows * w
    drift_events = (args.pre_windows + args.post_windows) * w
    alarms = firing = windows = 0
    metrics: dict[str, int] = {}
    delays: dict[str, list[int | None]] = {s: [] for s in DRIFTS}
    pre_alarms = dict.fromkeys(DRIFTS, 0)
    pre_windows = 0
    accuracy: dict[str, list[float]] = {"before": [], "after": []}
    for k, seed in enumerate(seeds):
        started = time.monotonic()
        base = CreditColumns.generate(seed, max(no_drift_events, drift_events))
        outcomes = run_scenario(
            Scenario("no_drift", seed, no_drift_events, label_delay=args.label_delay),
            champion,
            records,
            w,
            args.batch,
            base,
        )
        in_alarm = [o for o in outcomes if o.in_alarm]
        alarms += len(in_alarm)
        windows += len(outcomes)
        firing += sum(o.firing for o in outcomes)
        for o in in_alarm:
            for m, _ in o.alarms:
                metrics[m] = metrics.get(m, 0) + 1
            if o.change_point:
                metrics["change_point"] = metrics.get("change_point", 0) + 1
        log(
            f"no_drift seed {seed}: {len(outcomes)} windows, {len(in_alarm)} in alarm "
            f"({time.monotonic() - started:.0f} s)"
        )
        if k >= args.drift_seeds:
            continue
        for name in DRIFTS:
            scenario = Scenario(name, seed, drift_events, args.pre_windows * w, args.label_delay)
            outcomes = run_scenario(scenario, champion, records, w, args.batch, base)
            delay = detection_delay(scenario, outcomes, w)
            clean = clean_windows(scenario, outcomes, w)
            pre_windows += len(clean)
            pre_alarms[name] += sum(o.in_alarm for o in clean)
            delays[name].append(delay)
            if name == "concept_drift":
                arrive = (scenario.labels_arrive or 0) // w
                accuracy["before"] += [o.accuracy for o in clean if o.accuracy is not None]
                accuracy["after"] += [
                    o.accuracy for o in outcomes if o.seq > arrive and o.accuracy is not None
                ]
            log(f"{name} seed {seed}: detected after {delay} windows (start window = 0)")
    return {
        "false_alarm_rate": round(alarms / windows, 4),
        "false_alarm_rate_upper_95": round(float(beta.ppf(0.95, alarms + 1, windows - alarms)), 4),
        "false_alarm_windows": alarms,
        "no_drift_windows": windows,
        "false_alarm_metrics": metrics,
        "false_firing_breaches": firing,
        "detection_delay_windows": {s: _worst(d) for s, d in delays.items()},
        "detection_delay_by_seed": delays,
        "pre_drift_windows": pre_windows,
        "pre_drift_alarm_windows": pre_alarms,
        "concept_accuracy": {
            k: round(sum(v) / len(v), 3) if v else None for k, v in accuracy.items()
        },
        "seeds": seeds,
        "drift_seeds": seeds[: args.drift_seeds],
    }


def _worst(delays: list[int | None]) -> int | None:
    """The largest delay over seeds; None when any seed never detected the drift."""
    return None if not delays or None in delays else max(d for d in delays if d is not None)


def met(results: dict[str, Any]) -> dict[str, bool]:
    """Each target: met or not."""
    out = {}
    if results.get("events_per_s") is not None:
        out["events_per_s"] = results["events_per_s"] >= TARGETS["events_per_s"]
    if results.get("scorer_events_per_s") is not None and "events_per_s" in out:
        out["keeps_up_with_scorer"] = results["events_per_s"] >= results["scorer_events_per_s"]
        if results.get("group_events_per_s") is not None:
            out["group_keeps_up_with_scorer"] = (
                results["group_events_per_s"] >= results["scorer_events_per_s"]
            )
    one = results.get("scorer_events_per_s_one_process")
    if one is not None and "events_per_s" in out:
        out["keeps_up_with_one_scorer_process"] = results["events_per_s"] >= one
    if results.get("same_stream_kept_up") is not None:
        out["keeps_up_on_one_stream"] = results["same_stream_kept_up"]
    out["false_alarm_rate"] = results["false_alarm_rate"] <= TARGETS["false_alarm_rate"]
    for name, limit in TARGETS["detection_delay_windows"].items():
        delay = results["detection_delay_windows"].get(name)
        out[f"detection_delay_windows.{name}"] = delay is not None and delay <= limit
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both parts and write loadtest/results/drift.json."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_drift", description=__doc__)
    p.add_argument("--window", type=int, default=2000, help="events per count window")
    p.add_argument("--batch", type=int, default=500, help="events per in-process micro-batch")
    p.add_argument("--seed", type=int, default=101, help="first stream seed (training uses 42)")
    p.add_argument("--no-drift-seeds", type=int, default=4)
    p.add_argument("--no-drift-windows", type=int, default=80, help="windows per no-drift seed")
    p.add_argument("--drift-seeds", type=int, default=3, help="seeds each drift scenario runs on")
    p.add_argument("--pre-windows", type=int, default=10, help="windows before the drift")
    p.add_argument("--post-windows", type=int, default=10, help="windows from the drift on")
    p.add_argument("--label-delay", type=int, default=3000, help="events until an actual")
    p.add_argument("--drain-events", type=int, default=300_000)
    p.add_argument(
        "--drain-batch-size",
        type=int,
        default=DriftSettings().batch_size,
        help="drift's batch size (default: the service's)",
    )
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument(
        "--drain-group-processes",
        type=int,
        default=2,
        help="(b) also drain with a group of this many drift processes (0 or 1: skip)",
    )
    p.add_argument(
        "--same-stream-rates",
        type=lambda text: [int(r) for r in text.split(",")],
        default=[10_000, 15_000, 20_000, 25_000, 30_000],
        help="(c) events/s fed, one run each (comma-separated)",
    )
    p.add_argument(
        "--same-stream-seconds", type=float, default=10.0, help="(c) each run's feed (0: skip (c))"
    )
    p.add_argument(
        "--same-stream-drift-processes",
        type=int,
        default=1,
        help="(c) drift processes in the group (2: a group of two, --shards 2)",
    )
    p.add_argument("--skip-drain", action="store_true", help="quality only (no broker)")
    args = p.parse_args(argv)
    if args.drift_seeds > args.no_drift_seeds:
        p.error("--drift-seeds must not exceed --no-drift-seeds (they share the streams)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    log("training the champion (hgb on builtin:credit, 20,000 rows, function 0)")
    champion = train_champion()
    key = signing.load_private_key(tmp / f"{signing.generate_keypair(tmp)}.key")
    registry, _made = signing.ensure_keypair(tmp / "registry")  # signs the Deployment
    records = [
        signed_record(champion.content, key),
        deployment_verifier.sign(deployment_record(champion.content), registry),
    ]
    results: dict[str, Any] = {
        "events_per_s": None,
        "window_events": args.window,
        "delay_counting": "start window = 0 (concept drift: the window its first label arrives)",
        "label_delay_events": args.label_delay,
        "drift_start_window": args.pre_windows,
        "thresholds": [
            f"{t['metric']} {t['warning']:g}/{t['critical']:g} ({t['direction']})"
            for t in bench_thresholds()
        ],
        "detector": f"ddm {DEFAULT_PARAMS['ddm']}",
    }
    log(f"(a) detection quality: windows of {args.window} events, in process")
    results.update(quality(args, champion, records))
    if not args.skip_drain:
        settings = load_settings(CommonSettings, "bench", os.environ)
        where = settings.kafka_bootstrap
        log(f"(b) drain rate: {args.drain_events} events + predictions on {where}")
        base = CreditColumns.generate(args.seed, args.drain_events)
        stream = ScenarioStream(Scenario("no_drift", args.seed, args.drain_events), champion, base)
        groups = (1,) if args.drain_group_processes < 2 else (1, args.drain_group_processes)
        r, *group = drain(settings, records, stream, args, tmp, groups)
        results |= {
            "events_per_s": round(r.events_per_s),
            "messages_per_s": round(r.messages_per_s),
            "drain_events": r.events,
            "drain_seconds": round(r.seconds, 2),
            "drain_batch_size": args.drain_batch_size,
            "drain_windows_closed": r.windows_closed,
        }
        if group:
            results |= {
                "group_processes": args.drain_group_processes,
                "group_events_per_s": round(group[0].events_per_s),
                "group_drain_seconds": round(group[0].seconds, 2),
                "group_windows_closed": group[0].windows_closed,
            }
            n, eps = args.drain_group_processes, results["group_events_per_s"]
            log(f"drift group of {n}: {eps} events/s")
        scorer = RESULTS / "scorer.json"
        if scorer.exists():
            scored = json.loads(scorer.read_text())
            results["scorer_events_per_s"] = scored["events_per_s"]
            results["scorer_events_per_s_one_process"] = scored.get("events_per_s_one_process")
        log(f"drift service: {results['events_per_s']} events/s ({r.messages_per_s:.0f} msg/s)")
        if args.same_stream_seconds > 0:
            n = int(max(args.same_stream_rates) * args.same_stream_seconds)
            live = ScenarioStream(
                Scenario("no_drift", args.seed + 1, n),
                champion,
                CreditColumns.generate(args.seed + 1, n),
            )
            results |= same_stream(settings, records, tmp, live, args, tmp)
    results["targets"] = TARGETS
    results["met"] = met(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
