"""`make soak` (R17): steady load for a bounded time with hot swaps, service kills and
infrastructure faults, on a private Kafka and Redis; a JSON and PNG report and a pass/fail verdict.

    python -m loadtest.soak --duration 30m          # the default run
    python -m loadtest.soak --duration 5m --rate 200   # a short run while developing

The run starts its own broker and Redis under `var/soak` on free ports (the development stack on
9092/6379 is never touched; `soak_lifecycle`), trains v1 on builtin:credit, supervises registry,
two scorers, drift and alerting as child processes (restarting any that exits; `soak_stack`),
receives webhooks itself (`soak_sink`), creates the deployment through the registry API
(auto_approve), then produces events and actuals at a steady rate (`soak_load`) while
`soak_plan.schedule` injects faults (`soak_faults`). Every `--sample-s` it records RSS and open
files per service, lag of the scorer and drift groups, and Redis memory (`soak_sampler`). At the
end `soak_check` decides (`soak_report` writes var/soak/soak-report.json and .png); exit 1 names
each failed check. Ctrl-C stops everything it started; a run killed outright is cleaned up by
the next one.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from loadtest import soak_check, soak_plan, soak_report
from loadtest.soak_faults import Stack, inject, promote, train
from loadtest.soak_lifecycle import child_env, shutdown, start_infra, start_services
from loadtest.soak_load import SteadyLoad
from loadtest.soak_probe import LagReader, PredictionWatch
from loadtest.soak_sampler import Sampler
from loadtest.soak_sink import WebhookSink
from loadtest.soak_stack import wait_until
from services.cli.api_client import ApiClient
from services.common import signing
from services.common.admin import ensure_topics
from services.common.kafka_config import KafkaConfig
from services.common.settings import REPO_ROOT, CommonSettings, Secret, load_settings
from services.common.topics import TopicNamer

DRAIN_S = 120.0


class Clock:
    """Progress lines stamped with the time since the soak started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        """Print one progress line."""
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


def _interrupt(_sig: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def bring_up(plan: soak_plan.SoakPlan, run_id: str, parts: dict[str, Any], say) -> Stack:
    """Private infra, topics, signing key, sink and services; v1 trained and made champion."""
    env = child_env(plan)
    parts["kafka"], parts["redis"] = start_infra(plan, env, say)
    settings = load_settings(CommonSettings, "cli", {}, {"kafka_bootstrap": plan.bootstrap})
    conf = KafkaConfig.from_settings(settings, f"soak-{run_id}")
    namer = TopicNamer(plan.prefix)
    ensure_topics(conf.admin(), namer)
    signing.generate_keypair(plan.var_dir / "keys")
    signing.ensure_keypair(plan.var_dir / "keys" / "registry")  # the registry's, for Deployments
    owner = secrets.token_hex(16)
    sink_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    parts["sink"] = WebhookSink(plan.sink_port).start()
    parts["services"] = start_services(plan, env, sink_secret, owner, say)
    parts["scorer_lag"] = LagReader(plan.bootstrap, f"{plan.prefix}scorer", [namer.events])
    parts["drift_lag"] = LagReader(plan.bootstrap, f"{plan.prefix}drift",
                                   [namer.events, namer.predictions, namer.actuals])  # fmt: skip
    parts["watch"] = PredictionWatch(
        conf.consumer(f"soak-watch-{run_id}"), namer.predictions, run_id
    )
    parts["load"] = SteadyLoad(conf.producer(), namer, run_id, soak_plan.DEPLOYMENT, plan.rate,
                               plan.label_delay_s)  # fmt: skip
    api = ApiClient(f"http://127.0.0.1:{plan.registry_port}", Secret(owner))
    stack = Stack(plan, env, parts["kafka"], parts["redis"], parts["services"], parts["sink"],
                  api, parts["watch"], parts["load"], parts["scorer_lag"], parts["drift_lag"],
                  max(1000, int(3 * plan.rate)), time.monotonic())  # fmt: skip
    say("training v1 on builtin:credit")
    version, took = train(stack, seed=0)
    say(f"v{version} published in {took:.0f} s; waiting for the registry and alerting APIs")
    for port in (plan.registry_port, plan.alerting_port):
        if wait_until(lambda p=port: _healthy(p), 120) is None:
            raise RuntimeError(f"no /healthz on 127.0.0.1:{port} within 120 s (see logs)")
    promote(stack, version, first=True)
    say(f"deployment {soak_plan.DEPLOYMENT!r} created with v{version} as champion")
    return stack


def verdict(stack: Stack, sampler: Sampler, faults: list[dict[str, Any]], run_id: str,
            end_s: float, lines_at_end: dict[str, int], say) -> int:  # fmt: skip
    """Count, check, write the JSON and PNG, print the summary; 0 when every check passed."""
    plan, load, watch = stack.plan, stack.load, stack.watch
    sent = load.sent
    delivery = soak_check.count_delivery(load.acked, watch.champion_rows(sent))
    kills = sum(1 for f in faults if f["kind"].startswith("kill:scorer"))
    pauses = sum(1 for f in faults if f["kind"] == "pause_broker")
    bound = soak_check.duplicate_bound(kills, pauses, plan.batch_size)
    after_warmup = next((s["metric_lines"] for s in sampler.samples
                         if s["t"] >= plan.warmup_s and s["metric_lines"]), {})  # fmt: skip
    checks = soak_report.evaluate(sampler.samples, faults, delivery, bound, plan.warmup_s,
                                  end_s, after_warmup, lines_at_end)  # fmt: skip
    report = {
        "run_id": run_id, "duration_s": round(end_s, 1), "rate": plan.rate,
        "warmup_s": plan.warmup_s, "events_sent": sent, "events_acknowledged": sum(load.acked),
        "delivery_failures": load.failed, "delivery_errors": load.errors,
        "delivery": delivery.__dict__, "duplicate_bound": bound,
        "undecodable_predictions": watch.undecodable, "restarts": stack.services.restarts,
        "faults": faults, "metric_lines": {"after_warmup": after_warmup, "end": lines_at_end},
        "checks": [c.__dict__ for c in checks], "samples": sampler.samples,
        "ports": {"kafka": plan.kafka_port, "redis": plan.redis_port},
    }  # fmt: skip
    soak_report.write_json(plan.var_dir / "soak-report.json", report)
    soak_report.plot(plan.var_dir / "soak-report.png", sampler.samples, faults, plan.warmup_s)
    say(f"wrote {plan.var_dir / 'soak-report.json'} and {plan.var_dir / 'soak-report.png'}")
    lines = soak_check.summary_lines(checks)
    for line in lines:
        print(line, flush=True)
    return 0 if lines[-1] == "soak: PASS" else 1


def run(args: argparse.Namespace) -> int:
    """The whole soak; 0 when every check passed."""
    say = Clock().say
    run_id = f"soak{uuid.uuid4().hex[:6]}"
    plan = soak_plan.SoakPlan(
        var_dir=Path(args.var_dir).resolve(), prefix=f"soak-{run_id}.", duration_s=args.duration,
        rate=args.rate, sample_s=args.sample_s,
    ).with_ports()  # fmt: skip
    planned = soak_plan.schedule(plan.duration_s, plan.warmup_s, args.faults)
    say(f"soak {run_id}: {plan.duration_s:.0f} s at {plan.rate:g} events/s, warm-up "
        f"{plan.warmup_s:.0f} s, {len(planned)} faults; logs in {plan.log_dir}")  # fmt: skip
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    parts: dict[str, Any] = {}
    try:
        stack = bring_up(plan, run_id, parts, say)
        stack.watch.start()
        stack.started = time.monotonic()
        stack.load.start()
        if wait_until(lambda: stack.watch.max_index >= 0, 120) is None:
            raise RuntimeError("no champion prediction within 120 s of the first event")
        say(f"load running: {plan.rate:g} events/s; first answer after "
            f"{time.monotonic() - stack.started:.1f} s")  # fmt: skip
        redis_client = redis.Redis(
            host="127.0.0.1",
            port=plan.redis_port,
            socket_timeout=2,
            password=(plan.var_dir / "redis" / "password").read_text(),
        )
        sampler = parts["sampler"] = Sampler(stack, redis_client, plan.sample_s, say).start()
        faults = _run_faults(stack, planned, say)
        _sleep_until(stack.started + plan.duration_s)
        end_s = time.monotonic() - stack.started
        say("stopping the load; waiting for the last answers")
        stack.load.stop()
        sent = stack.load.sent
        wait_until(lambda: stack.watch.answered(sent) >= sum(stack.load.acked), DRAIN_S, step_s=1.0)
        lines_at_end = sampler.metric_lines()
        sampler.stop()
        return verdict(stack, sampler, faults, run_id, end_s, lines_at_end, say)
    except KeyboardInterrupt:
        say("interrupted: stopping everything the soak started")
        return 130
    except Exception as exc:  # noqa: BLE001 - set-up failed: say what, then clean up
        say(f"soak: FAIL (could not run: {type(exc).__name__}: {exc}); logs in {plan.log_dir}")
        return 1
    finally:
        shutdown(parts, say)


def _healthy(port: int) -> bool:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))


def _run_faults(stack: Stack, planned, say) -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = []
    spacing = planned[1].at_s - planned[0].at_s if len(planned) > 1 else 30.0
    last_start = stack.started + soak_plan.FAULT_SPAN * stack.plan.duration_s
    for i, fault in enumerate(planned):
        _sleep_until(stack.started + fault.at_s)
        if time.monotonic() > last_start:  # slow recoveries ate the schedule: stay bounded
            say(f"fault {i + 1}/{len(planned)}: {fault.kind} skipped (run behind schedule)")
            faults.append({"kind": fault.kind, "at_s": fault.at_s, "detail": "skipped",
                           "recovery_s": None, "skipped": True})  # fmt: skip
            continue
        say(f"fault {i + 1}/{len(planned)}: {fault.kind}")
        try:
            record = inject(stack, fault.kind, i, spacing)
        except Exception as exc:  # noqa: BLE001 - a fault that could not run is a failed check
            record = {"kind": fault.kind, "at_s": round(time.monotonic() - stack.started, 1),
                      "detail": f"error: {exc}", "recovery_s": None}  # fmt: skip
        faults.append(record)
        took = record["recovery_s"]
        say(f"  {record['detail']}; "
            + ("NOT recovered" if took is None else f"recovered in {took:.1f} s"))  # fmt: skip
    return faults


def _kinds(text: str) -> tuple[str, ...]:
    try:
        return soak_plan.parse_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run."""
    p = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__.split("\n")[0])
    p.add_argument(
        "--duration",
        type=soak_plan.parse_duration,
        default=1800.0,
        help="how long the load runs: 1800, 90s, 30m, 1h (default 30m)",
    )
    p.add_argument("--rate", type=float, default=300.0, help="events per second (default 300)")
    p.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    p.add_argument(
        "--faults",
        type=_kinds,
        default=soak_plan.KINDS,
        metavar="KIND,KIND",
        help="only these faults, cycled (e.g. pause_broker,kill:drift; default: every kind)",
    )
    p.add_argument("--var-dir", default=str(REPO_ROOT / "var" / "soak"),
                   help="private broker, Redis, logs and report (default var/soak)")  # fmt: skip
    args = p.parse_args(argv)
    if not 1 <= args.rate <= 5000 or args.duration < 60 or args.sample_s <= 0:
        p.error("--rate 1..5000, --duration >= 60 s and --sample-s > 0")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
