"""Starting and stopping everything a soak runs, including what a killed earlier soak left behind.

Each run records its ports in `<var_dir>/stack.json` and its services' PIDs in
`<var_dir>/services.pids`; the next run stops those first (a soak ended by SIGKILL cannot clean
up), then wipes the private broker's and Redis's data, keys and logs and starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from typing import Any

from loadtest import soak_plan
from loadtest.soak_stack import Infra, Restarter, Spec
from services.cli.demo_supervisor import Supervisor, stop_kept
from services.common import secret_files


def child_env(plan: soak_plan.SoakPlan) -> dict[str, str]:
    """The caller's environment without its STREAMOPS_* settings, plus the private stack's."""
    keep = ("STREAMOPS_INSECURE",)  # the broker kind run-soak.sh chose
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMOPS_") or k in keep}
    base.setdefault("PYTHON", sys.executable)  # kafka.sh's readiness check
    return {**base, **plan.env(), "PYTHONUNBUFFERED": "1"}


def stop_leftovers(plan: soak_plan.SoakPlan, say: Callable[[str], None]) -> None:
    """Stop the services, broker and Redis an earlier soak under the same var dir left running."""
    stopped = stop_kept(plan.var_dir / "services.pids")
    if stopped:
        say(f"stopped services an earlier soak left running: {', '.join(stopped)}")
    previous = plan.var_dir / "stack.json"
    if previous.exists():
        ports = json.loads(previous.read_text())
        old = soak_plan.SoakPlan(
            plan.var_dir, plan.prefix, kafka_port=ports["kafka"],
            controller_port=ports["controller"], redis_port=ports["redis"],
        )  # fmt: skip
        env = child_env(old)
        for part in ("redis", "kafka"):
            Infra(part, env, plan.var_dir).stop()  # says "not running" when already gone


def start_infra(plan: soak_plan.SoakPlan, env: dict[str, str], say) -> tuple[Infra, Infra]:
    """A fresh private broker and Redis under the plan's var dir."""
    stop_leftovers(plan, say)
    for leftover in ("kafka", "redis", "keys", "log"):
        shutil.rmtree(plan.var_dir / leftover, ignore_errors=True)
    plan.var_dir.mkdir(parents=True, exist_ok=True)
    ports = {"kafka": plan.kafka_port, "controller": plan.controller_port, "redis": plan.redis_port}
    (plan.var_dir / "stack.json").write_text(json.dumps(ports) + "\n")
    kafka, store = Infra("kafka", env, plan.var_dir), Infra("redis", env, plan.var_dir)
    say(f"starting a private Kafka on {plan.bootstrap} and Redis on 127.0.0.1:{plan.redis_port}")
    kafka.start()
    store.start()
    return kafka, store


def start_services(plan, env, sink_secret: str, owner: str, say) -> Restarter:
    """Registry, two scorers, drift and alerting, kept running."""
    config = plan.var_dir / "alerting.yaml"
    secret_files.write(config, soak_plan.alerting_config(plan, sink_secret))  # holds the secret
    restarter = Restarter(Supervisor(plan.log_dir, plan.var_dir / "services.pids", env), say)
    for name, module, args in soak_plan.service_commands(plan, config):
        extra = {"STREAMOPS_REGISTRY_TOKENS": f"soak-owner:owner:{owner}"}
        restarter.start(Spec(name, module, args, extra if name == "registry" else None))
    return restarter.watch()


def _step(say: Callable[[str], None], what: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - one failing step must not skip the others
        say(f"cleanup: {what} failed: {type(exc).__name__}: {exc}")
        return None


def shutdown(parts: dict[str, Any], say: Callable[[str], None]) -> None:
    """Stop whatever of load, sampler, services, readers, sink, Redis and Kafka was started."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
    try:
        kafka, store = parts.get("kafka"), parts.get("redis")
        if kafka is not None:
            with contextlib.suppress(Exception):
                kafka.signal(signal.SIGCONT)  # interrupted during a pause
        for name in ("load", "sampler"):
            if parts.get(name) is not None:
                _step(say, f"stopping the {name}", parts[name].stop)
        services = parts.get("services")
        if services is not None:
            codes = _step(say, "stopping the services", services.stop_all) or {}
            odd = {n: c for n, c in codes.items() if c not in (0, -15)}
            say("services stopped" + (f" (exit codes {odd})" if odd else ""))
        for name in ("watch", "scorer_lag", "drift_lag", "sink"):
            if parts.get(name) is not None:
                _step(say, f"closing the {name}", parts[name].close)
        for part in (store, kafka):
            if part is not None:
                _step(say, f"stopping {part.part}", part.stop)
        say("private Kafka and Redis stopped")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
