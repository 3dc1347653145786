"""`streamops demo`: the closed loop on the local broker, with every service as a process.

Trains v1 on builtin:credit, starts the registry, scorer, drift, alerting and trainer services and
a webhook sink (supervised, logs under `<var_dir>/log`), creates the `credit` deployment with an
auto_approve policy, then streams events at a bounded rate with delayed actuals, injects data
drift and later concept drift, and watches the system close the loop (see `demo_loop`). Ends
with a report table; exit 0 only when every milestone was reached and every event was answered.
Topics live under a fresh `<prefix>demo-<run>.` prefix, so runs never see each other's data.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import socket
import time
import uuid
from pathlib import Path

import httpx

from services.cli import demo_plan
from services.cli.api_client import ApiClient
from services.cli.cli_settings import cli_settings
from services.cli.demo_loop import LoopFailed, LoopWatch
from services.cli.demo_plan import DemoPlan
from services.cli.demo_report import render
from services.cli.demo_stream import DemoStream
from services.cli.demo_supervisor import ServiceDied, Supervisor, stop_kept
from services.cli.demo_watch import Timeline, slice_phases
from services.common import secret_files, signing
from services.common.admin import ensure_topics
from services.common.errors import StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.settings import Secret, load_settings
from services.common.topics import TopicNamer

STEPS = 7


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `demo`."""
    p = sub.add_parser("demo", help="run the closed-loop demo on the local broker")
    d = DemoPlan("", Path())
    p.add_argument("--keep", action="store_true", help="leave the services running afterwards")
    p.add_argument("--stop", action="store_true", help="stop the services a --keep run left")
    p.add_argument("--rate", type=float, default=d.rate, help="events per second")
    p.add_argument("--window-count", type=int, default=d.window, help="events per drift window")
    p.add_argument("--label-delay", type=float, default=d.label_delay_s, help="seconds")
    p.add_argument("--data-drift-at", type=int, default=d.data_drift_at, help="event index")
    p.add_argument("--concept-drift-at", type=int, default=d.concept_drift_at)
    p.add_argument("--retrain-after", type=int, default=d.retrain_after, help="windows")
    p.add_argument("--last-n", type=int, default=d.last_n, help="labelled events for v2")
    p.add_argument("--timeout", type=float, default=d.timeout_s, help="hard limit, seconds")
    p.add_argument("--registry-port", type=int, default=0, help="default: a free port")
    p.add_argument("--sink-port", type=int, default=0, help="default: a free port")
    p.add_argument("--alerting-port", type=int, default=0, help="default: a free port")
    p.set_defaults(func=run)


class Clock:
    """Progress lines stamped with the time since the demo started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        """Print one progress line."""
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def step(self, n: int, text: str) -> None:
        """Print a step header."""
        self.say(f"[{n}/{STEPS}] {text}")


def _wait(check, timeout_s: float, what: str, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor.check()
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, StreamopsError):
            pass
        time.sleep(0.3)
    raise LoopFailed(f"{what} not within {timeout_s:.0f} s")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _train_v1(settings, prefix: str, plan: DemoPlan, clock: Clock) -> None:
    from services.trainer.app import TrainJob, train_once
    from services.trainer.config import TrainerSettings

    trainer = load_settings(
        TrainerSettings,
        "trainer",
        {},
        {
            "kafka_bootstrap": settings.kafka_bootstrap,
            "topic_prefix": prefix,
            "var_dir": str(plan.var_dir),
        },
    )
    job = TrainJob(demo_plan.MODEL, dataset=f"builtin:credit?rows={plan.train_rows}")
    summary = train_once(trainer, job, lambda line: clock.say(f"      train: {line}"))
    metrics = ", ".join(f"{k} {summary.metrics[k]:.3f}" for k in ("accuracy", "roc_auc"))
    clock.say(f"      v{summary.version} {summary.model_id[:12]} published ({metrics})")


def write_webhook_secret(plan: DemoPlan) -> None:
    """A new webhook signing secret into the sink's secret file and the alerting config (0600)."""
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    secret_files.write(plan.sink_secret_file, webhook_secret + "\n")
    secret_files.write(plan.alerting_config_file, demo_plan.alerting_config(plan, webhook_secret))


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run the scenario; 0 only when the loop closed and nothing was lost."""
    settings = cli_settings(environ)
    var_dir = Path(settings.var_dir)
    if args.stop:
        stopped = stop_kept(var_dir / "demo" / "services.pids")
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    run_id = uuid.uuid4().hex[:6]
    prefix = f"{settings.topic_prefix}demo-{run_id}."
    plan = DemoPlan(
        prefix,
        var_dir,
        rate=args.rate,
        window=args.window_count,
        label_delay_s=args.label_delay,
        data_drift_at=args.data_drift_at,
        concept_drift_at=args.concept_drift_at,
        retrain_after=args.retrain_after,
        last_n=args.last_n,
        timeout_s=args.timeout,
        registry_port=args.registry_port,
        sink_port=args.sink_port,
        alerting_port=args.alerting_port,
    ).with_ports()
    clock = Clock()
    deadline = time.monotonic() + plan.timeout_s
    namer = TopicNamer(prefix)
    kafka = KafkaConfig.from_settings(settings, f"streamops-demo-{run_id}")

    clock.step(1, f"topics under {prefix!r}; signing key in {var_dir / 'keys'}")
    ensure_topics(kafka.admin(), namer)
    keys = var_dir / "keys"
    if not (keys.is_dir() and any(keys.glob("*.key"))):
        clock.say(f"      new signing key {signing.generate_keypair(keys)}")
    # Made before the services start: scorer and drift refuse to start without its .pub.
    registry_key, made = signing.ensure_keypair(settings.deployment_keys())
    if made:
        clock.say(f"      new registry (Deployment) signing key {registry_key.key_id}")
    (var_dir / "demo").mkdir(parents=True, exist_ok=True)
    plan.sink_out.unlink(missing_ok=True)

    clock.step(2, "training v1 on builtin:credit")
    _train_v1(settings, prefix, plan, clock)

    clock.step(3, f"starting the services (logs in {plan.log_dir}/demo-*.log)")
    owner, viewer = secrets.token_hex(16), secrets.token_hex(16)
    tokens = f"demo-owner:owner:{owner},demo-viewer:viewer:{viewer}"
    write_webhook_secret(plan)
    supervisor = Supervisor(plan.log_dir, plan.pid_file, environ)
    commands = demo_plan.service_commands(plan, settings)
    for name, module, argv in commands:
        env = {"STREAMOPS_REGISTRY_TOKENS": tokens} if name == "registry" else None
        supervisor.start(name, module, argv, env)
    registry_url = f"http://127.0.0.1:{plan.registry_port}"
    keep = False
    stream: DemoStream | None = None
    timeline: Timeline | None = None
    try:
        _wait(lambda: _listening(plan.sink_port), 30, "the webhook sink", supervisor)
        _wait(
            lambda: httpx.get(f"{registry_url}/healthz", timeout=2).status_code == 200,
            90,
            "the registry API",
            supervisor,
        )
        _wait(
            lambda: (
                httpx.get(f"http://127.0.0.1:{plan.alerting_port}/healthz", timeout=2).status_code
                == 200
            ),
            90,
            "the alerting API",
            supervisor,
        )
        clock.say(f"      {', '.join(n for n, _, _ in commands)} running; registry {registry_url}")
        timeline = Timeline(kafka.consumer(f"demo-watch-{run_id}"), namer).start()

        clock.step(4, "deploying v1 as champion of 'credit' (auto_approve policy, thresholds)")
        api = ApiClient(registry_url, Secret(owner))
        made = api.post(f"/deployments/{demo_plan.DEPLOYMENT}/requests",
                        demo_plan.deployment_request(plan, 1))  # fmt: skip
        clock.say(f"      request {made['request_id'][:8]}: {made['status']}")
        _wait(lambda: timeline.get("deployments"), 30, "the Deployment record", supervisor)

        clock.step(5, f"streaming {plan.rate:g} events/s, actuals {plan.label_delay_s:g} s later;"
                      f" data drift at event {plan.data_drift_at:,}, concept drift at "
                      f"{plan.concept_drift_at:,}")  # fmt: skip
        stream = DemoStream(
            kafka.producer(),
            namer.events,
            namer.actuals,
            deployment=demo_plan.DEPLOYMENT,
            rate=plan.rate,
            label_delay_s=plan.label_delay_s,
            data_drift_at=plan.data_drift_at,
            concept_drift_at=plan.concept_drift_at,
            malformed_at=plan.malformed,
            run_id=run_id,
        ).start()
        watch = LoopWatch(plan, timeline, stream, supervisor, clock.say)
        failure: str | None = None
        try:
            watch.run(deadline)
        except (LoopFailed, ServiceDied) as exc:
            failure = str(exc)

        clock.step(6, "stopping the traffic; checking every event was answered")
        stream.stop()
        served = timeline.served()
        catch_up = time.monotonic() + 60
        while served[0] < stream.sent and time.monotonic() < catch_up and failure is None:
            time.sleep(0.5)
            served = timeline.served()
        lost = stream.sent - served[0]
        if failure is None and lost:
            failure = f"{lost} event(s) never got a served prediction"
        letters = {x.record["source_key"] for x in timeline.get("deadletter")}
        bad = {f"{run_id}-bad-{i}".encode() for i in range(stream.malformed)}
        if failure is None and not bad <= letters:
            failure = f"malformed events missing from the dead-letter topic: {bad - letters}"
        phases = slice_phases(
            kafka.consumer(f"demo-slice-{run_id}"),
            list(watch.v2["lineage"]["dataset"]["stream_slices"]) if watch.v2 else [],
            namer.events,
        )
        if failure is None and set(phases) != {"concept_drift"}:
            failure = f"v2's slice is not all post-concept-drift events: {dict(phases)}"

        clock.step(7, "report")
        for line in render(watch, phases, served, time.monotonic() - clock.t0):
            print(line, flush=True)
        keep = args.keep
        if failure:
            print(f"demo: FAILED: {failure}", flush=True)
            return 1
        print("demo: OK, the loop closed", flush=True)
        return 0
    finally:
        if stream is not None and stream.alive():
            stream.stop()
        if timeline is not None:
            timeline.stop()
        if keep:
            print(f"--keep: services left running; dashboard {registry_url}/dashboard#token="
                  f"{viewer}")  # fmt: skip
            print(f"  topics under {prefix!r}; logs in {plan.log_dir}/demo-*.log")
            print("  to use the CLI on this stack (train, models import, deploy, produce):")
            print(f"    export STREAMOPS_TOPIC_PREFIX={prefix} STREAMOPS_CLI_REGISTRY_URL="
                  f"{registry_url} STREAMOPS_CLI_TOKEN={owner}")  # fmt: skip
            print("  stop them with: .venv/bin/streamops demo --stop   (then `make down`)")
        else:
            codes = supervisor.stop_all()
            odd = {n: c for n, c in codes.items() if c not in (0, -15)}
            print("services stopped" + (f" (exit codes {odd})" if odd else ""), flush=True)
