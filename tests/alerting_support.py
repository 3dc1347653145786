"""Running the alerting service in integration tests: config files, breaches, its API."""

from __future__ import annotations

import base64
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from services.common import serde
from services.common.settings import CommonSettings
from tests.kafka_support import ServiceProcess, free_port, produce

SECRET = "whsec_" + base64.b64encode(b"streamops-test-webhook-secret-32b").decode()


def write_config(
    path: Path,
    receivers: dict[str, str],
    *,
    group_wait: str = "0s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    group_by: str = "[deployment]",
    timeout: str = "2s",
    after_windows: int = 3,
) -> Path:
    """An alerting config: every receiver gets every alert (one route each, `continue`)."""
    names = list(receivers)
    lines = ["receivers:"]
    for name, url in receivers.items():
        lines.append(f'  - {{name: {name}, url: "{url}", secret: "{SECRET}", timeout: {timeout}}}')
    lines += [
        "route:",
        f"  receiver: {names[0]}",
        f"  group_by: {group_by}",
        f"  group_wait: {group_wait}",
        f"  group_interval: {group_interval}",
        f"  repeat_interval: {repeat_interval}",
    ]
    if len(names) > 1:
        lines.append("  routes:")
        lines += [f"    - {{receiver: {n}, continue: true}}" for n in names]
    lines += ["retrain:", f"  after_windows: {after_windows}", "  kinds: [accuracy, data_drift]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def breach(
    deployment: str = "credit",
    status: str = "firing",
    window: int = 1,
    *,
    kind: str = "data_drift",
    metric: str = "psi",
    feature: str | None = "income",
    severity: str = "critical",
    value: float = 0.4,
) -> dict[str, Any]:
    """A ThresholdBreach for window number `window` (60 s windows)."""
    start = 1_700_000_000_000 + window * 60_000
    return {
        "breach_id": uuid.uuid4().hex,
        "deployment": deployment,
        "kind": kind,
        "metric": metric,
        "feature": feature,
        "severity": severity,
        "status": status,
        "value": value,
        "threshold": 0.25,
        "window_start": start,
        "window_end": start + 60_000,
        "model_id": "sha256:" + "ab" * 32,
        "model_version": 1,
        "observed_at": int(time.time() * 1000),
        "labels": {},
    }


def send_breaches(bootstrap: str, topic: str, breaches: list[dict[str, Any]]) -> None:
    """Produce breaches keyed by deployment, in order."""
    produce(
        bootstrap,
        topic,
        [(b["deployment"], serde.encode("ThresholdBreach", b)) for b in breaches],
    )


class Alerting:
    """One alerting service process under test and its API.

    Its var_dir is the config file's folder (a test's tmp_path), where the service makes its
    API token at first start; `post` and `delete` send that token.
    """

    def __init__(self, bootstrap: str, prefix: str, config: Path, log: Path, **settings: Any):
        self.api_port = free_port()
        self.group = settings.pop("group_id", f"streamops-alerting-{uuid.uuid4().hex[:8]}")
        self.var_dir = Path(settings.pop("var_dir", config.parent))
        flags = {
            "var_dir": str(self.var_dir),
            "kafka_bootstrap": bootstrap,
            "topic_prefix": prefix,
            "group_id": self.group,
            "config_file": str(config),
            "api_port": self.api_port,
            "metrics_port": 0,
            "tick_s": 0.1,
            "backoff_base_s": 0.2,
            "backoff_cap_s": 1.0,
            "session_timeout_s": 6,
            **settings,
        }
        self.args = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        # The Redis password stays the project's (var/redis/password), by environment.
        redis_password = os.environ.get("STREAMOPS_REDIS_PASSWORD")
        self.env = {
            "STREAMOPS_REDIS_PASSWORD": redis_password or CommonSettings().redis_secret().reveal()
        }
        self.log = log
        self.proc: ServiceProcess | None = None

    def start(self, ready_timeout_s: float = 60.0) -> Alerting:
        """Start and wait until the API answers."""
        self.proc = ServiceProcess(
            "services.cli.demo_alerting", self.args, self.log, self.env
        ).start()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError("alerting exited at start:\n" + self.proc.log_tail(40))
            try:
                httpx.get(self.url("/healthz"), timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("alerting API never answered:\n" + self.proc.log_tail(40))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"

    def get(self, path: str) -> Any:
        response = httpx.get(self.url(path), timeout=10)
        response.raise_for_status()
        return response.json()

    @property
    def token(self) -> str:
        """The API token the service made (or read) in its var_dir at start."""
        return (self.var_dir / "alerting" / "token").read_text().strip()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        auth = {"Authorization": f"Bearer {self.token}"}
        response = httpx.post(self.url(path), json=body, headers=auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        assert self.proc is not None
        if not self.proc.alive():
            return self.proc.proc.returncode
        code, _ = self.proc.terminate(timeout_s=30)
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()


class FakeMessage:
    """What faust hands an agent: topic, partition, offset, key, value."""

    def __init__(self, topic: str, value: bytes | None, offset: int = 0, key: bytes = b"k"):
        self.topic, self.partition, self.offset = topic, 0, offset
        self.key, self.value = key, value


def alerting_shell(config: Path, prefix: str = "fz.") -> tuple[Any, list[tuple[str, bytes]]]:
    """An AlertingService with its real engine, decode and dead-letter paths but no faust app,
    Kafka or Redis (for in-process tests): sends are kept as (record name, value)."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from services.alerting.alerting_metrics import AlertingMetrics
    from services.alerting.app import SERVICE, AlertingService
    from services.alerting.engine import Engine
    from services.alerting.routing import load_config
    from services.alerting.ssrf import Policy
    from services.common.deadletter import DeadLetterWriter
    from services.common.metrics import StandardMetrics
    from services.common.topics import TopicNamer

    sent: list[tuple[str, bytes]] = []
    shell = AlertingService.__new__(AlertingService)
    shell.settings = type("Settings", (), {"public_url": "https://alerts.example.com"})()
    shell.namer = TopicNamer(prefix)
    shell.engine = Engine(load_config(config, Policy()), dashboard_url="https://example.com")
    shell.registry = CollectorRegistry()
    shell.standard = StandardMetrics(shell.registry, SERVICE)
    shell.metrics = AlertingMetrics(shell.registry)
    shell.dead_letters = DeadLetterWriter(shell.namer.deadletter, SERVICE, serde.encode)
    shell.deadletter_topic, shell.retrain_topic = "deadletter", "retrain"
    shell._ready = asyncio.Event()
    shell._ready.set()
    shell.deliverer = type("Deliverer", (), {"wake": asyncio.Event()})()

    async def send(_topic: Any, _key: bytes, value: bytes, record: str) -> None:
        sent.append((record, value))

    async def save(entries: Any = None) -> None:
        for entry in entries or ():
            sent.append(("Entry", entry.body.encode()))

    shell._send, shell._save = send, save
    return shell, sent
