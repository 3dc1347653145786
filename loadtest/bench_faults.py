"""Fault-recovery benchmark: R2, R4 and R8 timings as figures, each judged against its target.

On the real broker, each scenario on topics of its own (deleted afterwards):
- R2 (`loadtest.fault_kills`): an exactly-once scorer killed with SIGKILL three times; seconds
  from each kill to the restarted scorer's first committed transaction and to predictions
  flowing again, against session timeout + transaction timeout + 5 s; duplicates and missing
  events under read_committed;
- R4 (`loadtest.fault_churn`): three scorers on twelve partitions, a member stopped or added
  every 20 s; per change, seconds until the group's lag is back under 1,000 (target 60 s);
  lost and duplicated events;
- R8 (`loadtest.fault_swaps`): twenty approved versions deployed at one per second under load;
  per swap, Deployment append to the first prediction by the new version (target 1 s);
  predictions by unapproved versions, lost events.
Writes loadtest/results/faults.json: ``checks`` (figure, target, measured, met) and the details.

    python -m loadtest.bench_faults
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from loadtest import fault_churn, fault_kills, fault_swaps
from loadtest.fault_probes import log
from loadtest.fault_verdicts import r2_checks, r4_checks, r8_checks

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and write loadtest/results/faults.json."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_faults", description=__doc__)
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--only", nargs="*", choices=["r2", "r4", "r8"], default=["r2", "r4", "r8"])
    p.add_argument("--r2-events", type=int, default=6000)
    p.add_argument("--r2-kills", type=int, default=3)
    p.add_argument("--r2-batch-size", type=int, default=200)
    p.add_argument("--r4-rate", type=int, default=2000, help="events/s during the churn")
    p.add_argument("--r4-every", type=float, default=20.0, help="seconds between changes")
    p.add_argument("--r4-changes", default="stop,add,stop,add")
    p.add_argument("--r8-versions", type=int, default=20, help="approved versions deployed")
    p.add_argument("--r8-rate", type=int, default=1000, help="events/s during the swaps")
    p.add_argument("--output", type=Path, default=RESULTS / "faults.json")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    for part in args.only:  # a log directory each: one scorer's log must not satisfy another's
        (tmp / part).mkdir()
    results: dict[str, Any] = {"checks": []}
    if "r2" in args.only:
        log(f"R2: exactly-once scorer, kill -9 x{args.r2_kills} over {args.r2_events} events")
        results["r2"] = fault_kills.run(
            args.bootstrap, tmp / "r2", args.r2_events, args.r2_kills, args.r2_batch_size
        )
        results["checks"] += r2_checks(results["r2"])
        log(f"R2: {json.dumps(results['r2'])}")
    if "r4" in args.only:
        changes = args.r4_changes.split(",")
        log(f"R4: 3 scorers, 12 partitions, {changes} every {args.r4_every:g} s")
        results["r4"] = fault_churn.run(
            args.bootstrap, tmp / "r4", args.r4_rate, args.r4_every, changes
        )
        results["checks"] += r4_checks(results["r4"])
        log(f"R4: {json.dumps(results['r4'])}")
    if "r8" in args.only:
        log(f"R8: {args.r8_versions} versions at 1/s under {args.r8_rate} events/s")
        results["r8"] = fault_swaps.run(args.bootstrap, tmp / "r8", args.r8_versions, args.r8_rate)
        results["checks"] += r8_checks(results["r8"])
        log(f"R8: {json.dumps(results['r8'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    for c in results["checks"]:
        log(f"{c['id']} {'met' if c['met'] else 'MISSED'}: {c['figure']}: {c['measured']}")
    log(f"logs in {tmp}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
