"""The soak's faults and how recovery from each is measured.

Each fault returns a record: its kind, when (seconds since the load started), what was done, and
`recovery_s`, the seconds from the fault's end until the affected path works again:
- scorer path: every event sent in the first second after the fault's end has a champion answer
  (events are keyed over every partition, so each partition flows again), the group committed
  past what was produced before the fault's end, and its lag is under the bound;
- drift path: the drift group committed past what was produced (events, predictions, actuals)
  before the fault's end, and its lag is under the bound;
- registry and alerting: their health endpoint answers 200;
- hot swap: the new version answers an event (from approval); training time is reported aside;
- webhook 500s: a delivery gets through after the receiver recovers.
For a kill the fault's end is the kill itself: the supervisor's restart is part of recovery.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from loadtest import soak_plan
from loadtest.soak_load import SteadyLoad
from loadtest.soak_probe import LagReader, PredictionWatch
from loadtest.soak_sink import WebhookSink
from loadtest.soak_stack import Infra, Restarter, wait_until
from services.cli.api_client import ApiClient
from services.common.settings import REPO_ROOT

PAUSE_S = 10.0
RECOVERY_TIMEOUT_S = 120.0
PUBLISHED = re.compile(r"^published \S+ v(\d+)\s", re.MULTILINE)


@dataclasses.dataclass
class Stack:
    """Handles on everything a fault touches or a probe reads."""

    plan: soak_plan.SoakPlan
    env: dict[str, str]
    kafka: Infra
    redis: Infra
    services: Restarter
    sink: WebhookSink
    api: ApiClient
    watch: PredictionWatch
    load: SteadyLoad
    scorer_lag: LagReader
    drift_lag: LagReader
    lag_bound: int
    started: float  # monotonic time the load started


def train(stack: Stack, seed: int) -> tuple[int, float]:
    """Publish a new version with `streamops train`; (version, seconds it took)."""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "train", "--model-name", soak_plan.MODEL,
         "--dataset", f"builtin:credit?rows=2000&seed={seed}", "--prefix", stack.plan.prefix,
         "--estimator", "logreg", "--search", "random", "--trials", "1"],
        cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    found = PUBLISHED.search(done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"streamops train failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1)), time.monotonic() - t0


def promote(stack: Stack, version: int, first: bool = False) -> dict[str, Any]:
    """set_champion `version` through the registry (auto-approved), retried while it catches up."""
    body = soak_plan.deployment_request(version, f"soak: hot swap to v{version}", first)
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = stack.api.post(f"/deployments/{soak_plan.DEPLOYMENT}/requests", body)
            if answer.get("status") == "approved":
                return answer
            error = f"status {answer.get('status')}"
        except Exception as exc:  # noqa: BLE001 - the registry may not have the version yet
            error = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"set_champion v{version} not approved within 60 s: {error}")
        time.sleep(1)


def _marks(reader: LagReader) -> dict[tuple[str, int], int]:
    """High watermarks now, waiting (up to the recovery timeout) for the broker to answer."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        try:
            return reader.marks(timeout_s=5)
        except Exception:  # noqa: BLE001 - the broker is still coming back
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def scorer_ok(stack: Stack, mark: float) -> Callable[[], bool]:
    """Every event of the first second after `mark` is answered (so every partition flows), the
    group committed past the fault, and its lag is small."""
    first = stack.load.index_at(mark)
    fresh = (first, first + max(1, int(stack.plan.rate)))
    marks = _marks(stack.scorer_lag)
    return lambda: (
        stack.watch.all_answered(*fresh)
        and stack.scorer_lag.caught_up(marks)
        and stack.scorer_lag.lag() < stack.lag_bound
    )


def drift_ok(stack: Stack) -> Callable[[], bool]:
    """The drift group committed past everything produced before now, and its lag is small."""
    marks = _marks(stack.drift_lag)
    return lambda: stack.drift_lag.caught_up(marks) and stack.drift_lag.lag() < stack.lag_bound


def healthy(port: int) -> Callable[[], bool]:
    """The service on `port` answers /healthz with 200."""
    return lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200


def _both(*checks: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: all(c() for c in checks)


def _hot_swap(stack: Stack, index: int) -> tuple[str, float, Callable[[], bool]]:
    version, took = train(stack, seed=100 + index)
    promote(stack, version)
    mark = time.monotonic()
    return (
        f"v{version} trained in {took:.0f} s, approved",
        mark,
        (lambda: version in stack.watch.versions),
    )


def _kill(stack: Stack, name: str) -> tuple[str, float, Callable[[], bool]]:
    pid = stack.services.kill(name)
    mark = time.monotonic()
    if name == "drift":
        probe = drift_ok(stack)
    elif name in ("registry", "alerting"):
        probe = healthy(getattr(stack.plan, f"{name}_port"))
    else:
        probe = scorer_ok(stack, mark)
    restarted = lambda: stack.services.pids().get(name, pid) != pid  # noqa: E731
    return f"kill -9 {name} (pid {pid})", mark, _both(restarted, probe)


def _pause_broker(stack: Stack) -> tuple[str, float, Callable[[], bool]]:
    stack.kafka.signal(signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)
    finally:
        stack.kafka.signal(signal.SIGCONT)
    mark = time.monotonic()
    return f"broker SIGSTOP {PAUSE_S:.0f} s", mark, _both(scorer_ok(stack, mark), drift_ok(stack))


def _restart_redis(stack: Stack) -> tuple[str, float, Callable[[], bool]]:
    stack.redis.kill()
    mark = time.monotonic()
    check = _both(drift_ok(stack), healthy(stack.plan.registry_port))
    stack.redis.start()
    down = time.monotonic() - mark
    return f"redis kill -9, started again after {down:.1f} s", mark, check


def _webhook_500(stack: Stack, seconds: float) -> tuple[str, float, Callable[[], bool]]:
    stack.sink.failing.set()
    before = stack.sink.refused
    time.sleep(seconds)
    stack.sink.failing.clear()
    mark = time.monotonic()
    detail = f"receiver 500 for {seconds:.0f} s ({stack.sink.refused - before} refused)"
    return detail, mark, lambda: stack.sink.accepted_since(mark) > 0


def inject(stack: Stack, kind: str, index: int, spacing_s: float) -> dict[str, Any]:
    """Run one fault and wait for recovery; its record for the report."""
    at_s = time.monotonic() - stack.started
    if kind == "hot_swap":
        detail, mark, check = _hot_swap(stack, index)
    elif kind.startswith("kill:"):
        detail, mark, check = _kill(stack, kind.split(":", 1)[1])
    elif kind == "pause_broker":
        detail, mark, check = _pause_broker(stack)
    elif kind == "restart_redis":
        detail, mark, check = _restart_redis(stack)
    elif kind == "webhook_500":
        detail, mark, check = _webhook_500(stack, min(60.0, max(15.0, spacing_s / 2)))
    else:
        raise ValueError(f"unknown fault {kind!r}")
    lead = time.monotonic() - mark  # e.g. Redis's own start-up after its kill
    waited = wait_until(check, RECOVERY_TIMEOUT_S)
    recovery = None if waited is None else lead + waited
    return {
        "kind": kind,
        "at_s": round(at_s, 1),
        "end_s": round(mark - stack.started, 1),
        "detail": detail,
        "recovery_s": None if recovery is None else round(recovery, 1),
    }
