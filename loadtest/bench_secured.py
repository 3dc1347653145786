"""What the secured broker costs: the scorer's and drift's drain rates on a SASL_SSL broker beside
a PLAINTEXT one, in the same run.

Two private single-node brokers (infra/kafka/kafka.sh, var dirs under the run's temp folder, free
ports), same JVM settings: one started as `make up` starts it (SCRAM-SHA-512 over TLS, the
StandardAuthorizer, the project's ACLs; every process logs in as its own principal), one with
STREAMOPS_INSECURE=1. A warm-up round (the new brokers' JIT) is not counted; the counted rounds
alternate which broker goes first, so drift in the machine's speed falls on both. Each round drains
fresh topics with one scorer (the bench_scorer drain) and one drift process (the drift_drain drain,
on the shared Redis). The cost is the ratio of the medians: secured / plaintext events/s (target:
at least 0.85). Writes loadtest/results/secured.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtest import bench_scorer
from loadtest.bench_scorer import DRAIN_BATCH, RESULTS, drain_rate, event_values
from loadtest.drift_champion import deployment_record, train_champion
from loadtest.drift_drain import drain
from loadtest.drift_scenarios import CreditColumns, Scenario, ScenarioStream
from loadtest.soak_stack import Infra
from services.common import deployment_verifier, signing
from services.common.settings import CommonSettings, load_settings
from services.drift.config import DriftSettings
from services.trainer.publisher import signed_record

TARGET = 0.85  # secured events/s at least 85% of plaintext's


def log(text: str) -> None:
    print(f"[bench-secured] {text}", flush=True)


def _free_pair() -> int:
    """A port whose successor is free too (client and controller)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise SystemExit("no two adjacent free ports for a private broker")


class Broker:
    """One private single-node broker of this run."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.var_dir, self.port = kind, tmp / kind, _free_pair()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMOPS_")}
        env |= {
            "STREAMOPS_VAR_DIR": str(self.var_dir),
            "STREAMOPS_KAFKA_PORT": str(self.port),
            "STREAMOPS_KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "STREAMOPS_INSECURE": "0" if kind == "secured" else "1",
            "PYTHON": sys.executable,
        }
        self.infra = Infra("kafka", env, self.var_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def main(argv: list[str] | None = None) -> int:
    """Alternate drains on both brokers; write loadtest/results/secured.json."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_secured", description=__doc__)
    p.add_argument("--rounds", type=int, default=3, help="drains per broker and service")
    p.add_argument(
        "--warmup", type=int, default=1, help="rounds first run and not counted (new brokers' JIT)"
    )
    p.add_argument("--scorer-events", type=int, default=100_000)
    p.add_argument("--drift-events", type=int, default=100_000)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-secured-"))
    keys = tmp / "keys"
    keys.mkdir()
    key = signing.load_private_key(keys / f"{signing.generate_keypair(keys)}.key")
    registry, _made = signing.ensure_keypair(keys / "registry")
    log("training the champion (hgb on builtin:credit)")
    champion = train_champion()
    model = signed_record(champion.content, key)
    records = [model, deployment_verifier.sign(deployment_record(champion.content), registry)]
    values = event_values(args.scorer_events, 3, "e")
    shared = load_settings(CommonSettings, "bench", os.environ)  # the shared Redis
    drift_args = argparse.Namespace(
        window=2000, drain_batch_size=DriftSettings().batch_size, drain_timeout=300.0
    )
    brokers = [Broker("plaintext", tmp), Broker("secured", tmp)]
    rates: dict[str, dict[str, list[float]]] = {
        b.kind: {"scorer": [], "drift": []} for b in brokers
    }
    try:
        for broker in brokers:
            log(f"starting the {broker.kind} broker on {broker.bootstrap}")
            broker.infra.start()
            if broker.kind == "secured":
                bench_scorer.SECURED[broker.bootstrap] = broker.var_dir
        for round_no in range(1 - args.warmup, args.rounds + 1):
            for broker in brokers if round_no % 2 else reversed(brokers):
                scorer_args = argparse.Namespace(bootstrap=broker.bootstrap, batch_size=DRAIN_BATCH)
                kafka = bench_scorer.login(broker.bootstrap)
                rate = drain_rate(scorer_args, kafka, keys, model, values, 1, tmp)
                if round_no > 0:
                    rates[broker.kind]["scorer"].append(rate)
                what = f"round {round_no}" if round_no > 0 else "warm-up"
                log(f"{what}, {broker.kind}: scorer {rate:,.0f} events/s")
                settings = CommonSettings(
                    kafka_bootstrap=broker.bootstrap,
                    var_dir=str(broker.var_dir),
                    redis_host=shared.redis_host,
                    redis_port=shared.redis_port,
                    redis_password=shared.redis_secret(),
                )
                base = CreditColumns.generate(101 + round_no, args.drift_events)
                stream = ScenarioStream(
                    Scenario("no_drift", 101 + round_no, args.drift_events), champion, base
                )
                (result,) = drain(settings, records, stream, drift_args, keys)
                if round_no > 0:
                    rates[broker.kind]["drift"].append(result.events_per_s)
                log(f"{what}, {broker.kind}: drift {result.events_per_s:,.0f} events/s")
    finally:
        for broker in brokers:
            broker.infra.stop()
    results: dict[str, Any] = {"checks": []}
    for service in ("scorer", "drift"):
        plain = statistics.median(rates["plaintext"][service])
        secured = statistics.median(rates["secured"][service])
        ratio = round(secured / plain, 3)
        results["checks"].append(
            {
                "id": f"security-{service}",
                "figure": f"{service} drain events/s, secured broker / PLAINTEXT (medians)",
                "target": f">= {TARGET}",
                "measured": ratio,
                "met": ratio >= TARGET,
            }
        )
        results[service] = {
            "plaintext_events_per_s": round(plain),
            "secured_events_per_s": round(secured),
            "runs": {kind: [round(r) for r in v[service]] for kind, v in rates.items()},
            "events_per_drain": args.scorer_events if service == "scorer" else args.drift_events,
            "rounds": args.rounds,
            "warmup_rounds": args.warmup,
        }
        log(f"{service}: secured/plaintext = {ratio} (target >= {TARGET})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "secured.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
