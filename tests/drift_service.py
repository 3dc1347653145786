"""Running the drift service as a process in integration tests, and reading its Redis state."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.kafka_support import ServiceProcess, end_offsets
from tests.signing_support import session_keys


def start_drift(bootstrap: str, prefix: str, group: str, log_path: Path, **settings: Any):
    """Start `python -m services.drift` with test settings (flags override defaults)."""
    flags = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": prefix,
        "group_id": group,
        "metrics_port": 0,
        "max_wait_ms": 50,
        **session_keys().flags(),  # records signed by tests.signing_support's keys verify
        **settings,
    }
    args = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    return ServiceProcess("services.drift", args, log_path).start()


def stored_offsets(redis_client: Any, namespace: str) -> dict[tuple[str, int], int]:
    """The next offsets the service stored with its state."""
    raw = redis_client.hgetall(f"{namespace}:offsets")
    out = {}
    for k, v in raw.items():
        topic, _, part = k.decode().rpartition("|")
        out[(topic, int(part))] = int(v)
    return out


def wait_consumed(
    redis_client: Any,
    namespace: str | list[str],
    bootstrap: str,
    topics: list[str],
    service: ServiceProcess | list[ServiceProcess] | None = None,
    timeout_s: float = 90.0,
) -> float:
    """Wait until the stored offsets reach the end of every partition; returns seconds waited.

    A sharded group stores each process's offsets in its own namespace: give them all (and
    the processes)."""
    spaces = [namespace] if isinstance(namespace, str) else namespace
    services = service if isinstance(service, list) else [service] if service else []
    ends = {(t, p): e for t in topics for p, e in end_offsets(bootstrap, t).items() if e > 0}
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        done: dict[tuple[str, int], int] = {}
        try:
            for ns in spaces:
                done |= stored_offsets(redis_client, ns)
        except Exception:  # Redis restarting in the test: ask again
            done = {}
        if all(done.get(tp, 0) >= end for tp, end in ends.items()):
            return time.monotonic() - started
        for s in services:
            if not s.alive():
                raise AssertionError(f"drift service exited:\n{s.log_tail()}")
        time.sleep(0.1)
    tail = "\n".join(s.log_tail() for s in services)
    raise AssertionError(f"not consumed in {timeout_s} s: ends {ends}\n{tail}")


def monitor_state(redis_client: Any, namespace: str, deployment: str) -> dict[str, Any]:
    """The stored state of one deployment's monitor."""
    raw = redis_client.get(f"{namespace}:monitor:{deployment}")
    assert raw is not None, f"no state for {deployment}"
    return json.loads(raw)


def closed_windows(redis_client: Any, namespace: str, deployment: str) -> dict[int, dict]:
    """The stored summaries of closed windows, by seq."""
    raw = redis_client.hgetall(f"{namespace}:closed:{deployment}")
    return {int(k): json.loads(v) for k, v in raw.items()}


def _samples(metrics_port: int) -> list[Any]:
    """Every sample the service's /metrics shows now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def consumer_lag(metrics_port: int) -> dict[tuple[str, int], float]:
    """The service's `streamops_consumer_lag` series, by (topic, partition)."""
    return {
        (s.labels["topic"], int(s.labels["partition"])): s.value
        for s in _samples(metrics_port)
        if s.name == "streamops_consumer_lag" and s.labels.get("service") == "drift"
    }


def metric_value(metrics_port: int, name: str, labels: dict[str, str]) -> float | None:
    """One sample of the service's metrics (None when it has no such sample yet)."""
    for s in _samples(metrics_port):
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None
