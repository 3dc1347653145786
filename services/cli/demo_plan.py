"""The demo's plan: rates, windows, injection points, and what each service is started with.

Everything the scenario depends on is in one frozen `DemoPlan` (built from `streamops demo`
flags); `service_commands` turns it into the command lines of the supervised services, and
`deployment_request` into the set_champion request that creates the demo deployment with its
thresholds and its auto_approve policy.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

from services.cli.cli_settings import CliSettings

DEPLOYMENT = "credit"
MODEL = "credit"
# Data drift: PSI of any feature against the champion's baseline. Concept drift: accuracy.
THRESHOLDS = [
    {"metric": "psi", "feature": None, "warning": 0.1, "critical": 0.25, "hysteresis": 0.05,
     "direction": "above"},
    {"metric": "accuracy", "feature": None, "warning": 0.75, "critical": 0.6,
     "hysteresis": 0.05, "direction": "below"},
]  # fmt: skip


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    """The scenario's numbers and where everything runs."""

    prefix: str  # topic prefix of this run (also the Redis namespaces, via group ids)
    var_dir: Path
    rate: float = 100.0  # events per second
    window: int = 1000  # events per drift window
    label_delay_s: float = 3.0
    data_drift_at: int = 2500  # event index
    concept_drift_at: int = 5000
    # Breached windows before alerting asks for a retrain. The drift service writes a breach
    # only when a threshold changes state (firing, escalated, resolved), not once per window, so
    # alerting never sees K > 1 consecutive firing windows: 1 retrains on the first breach.
    retrain_after: int = 2
    # Labelled events v2 trains on: the newest ones when the request arrives. The accuracy
    # levels below fire only once most of a window's labels are post-concept-drift, so at
    # least about half a window of such labels exists by then.
    last_n: int = 500
    shadow_windows: int = 2  # windows of challenger evidence before a decision
    after_swap_windows: int = 2
    train_rows: int = 5000
    timeout_s: float = 420.0
    registry_port: int = 0
    sink_port: int = 0
    alerting_port: int = 0
    malformed: tuple[int, ...] = (100, 1100, 2100)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.window < 50 or self.label_delay_s < 0:
            raise ValueError("rate must be > 0, window >= 50 events and label delay >= 0")
        if not 0 < self.data_drift_at < self.concept_drift_at:
            raise ValueError("data drift must come before concept drift (0 < A < C)")
        if self.retrain_after < 1 or self.last_n < 100:
            raise ValueError("retrain_after >= 1 and last_n >= 100")

    @property
    def log_dir(self) -> Path:
        """Where the service logs go."""
        return self.var_dir / "log"

    @property
    def sink_out(self) -> Path:
        """The sink's JSON lines of accepted webhooks."""
        return self.var_dir / "demo" / "webhooks.jsonl"

    @property
    def sink_secret_file(self) -> Path:
        """The webhook signing secret the sink reads (0600; never on a command line)."""
        return self.var_dir / "demo" / "webhook-secret"

    @property
    def alerting_config_file(self) -> Path:
        """The alerting YAML, which holds the same secret (0600)."""
        return self.var_dir / "demo" / "alerting.yaml"

    @property
    def pid_file(self) -> Path:
        """The supervised PIDs (read by `streamops demo --stop`)."""
        return self.var_dir / "demo" / "services.pids"

    def with_ports(self) -> DemoPlan:
        """The plan with every 0 port replaced by a free one."""
        return dataclasses.replace(
            self,
            registry_port=self.registry_port or free_port(),
            sink_port=self.sink_port or free_port(),
            alerting_port=self.alerting_port or free_port(),
        )


def _flags(values: dict[str, Any]) -> list[str]:
    return [a for k, v in values.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def alerting_config(plan: DemoPlan, secret: str) -> str:
    """The alerting YAML: every alert to the local sink; accuracy breaches ask for a retrain."""
    url = f"http://127.0.0.1:{plan.sink_port}/"
    return "\n".join(
        [
            "receivers:",
            f'  - {{name: demo-sink, url: "{url}", secret: "{secret}", timeout: 5s}}',
            "route:",
            "  receiver: demo-sink",
            "  group_by: [deployment]",
            "  group_wait: 1s",
            "  group_interval: 2s",
            "  repeat_interval: 1h",
            "retrain:",
            f"  after_windows: {plan.retrain_after}",
            "  kinds: [accuracy]",
            "",
        ]
    )


def service_commands(plan: DemoPlan, settings: CliSettings) -> list[tuple[str, str, list[str]]]:
    """(name, module, args) of every supervised process, in start order.

    No secret is on these command lines (every local user can read them): the sink reads its
    secret from `plan.sink_secret_file`, alerting from its config file, the registry its tokens
    from the environment.
    """
    common = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "topic_prefix": plan.prefix,
        "redis_host": settings.redis_host,
        "redis_port": settings.redis_port,
        "var_dir": plan.var_dir,
        "metrics_port": 0,
    }
    registry_url = f"http://127.0.0.1:{plan.registry_port}"
    return [
        ("sink", "services.cli", ["webhook", "sink", "--port", str(plan.sink_port),
                                  "--secret-file", str(plan.sink_secret_file),
                                  "--out", str(plan.sink_out)]),
        ("registry", "services.registry", _flags({
            **common, "http_port": plan.registry_port, "transactional_id": f"{plan.prefix}registry",
            "sample_interval_s": 2})),
        ("scorer", "services.scorer", _flags({
            **common, "group_id": f"{plan.prefix}scorer", "instance_id": "demo-1",
            "max_wait_ms": 50})),
        ("drift", "services.drift", _flags({
            **common, "group_id": f"{plan.prefix}drift", "window_count": plan.window,
            "max_wait_ms": 100})),
        ("alerting", "services.cli.demo_alerting", _flags({
            **common, "group_id": f"{plan.prefix}alerting",
            "config_file": plan.alerting_config_file, "api_port": plan.alerting_port,
            "tick_s": 0.25, "session_timeout_s": 6,
            "dashboard_url": f"{registry_url}/dashboard", "backoff_base_s": 0.5,
            "backoff_cap_s": 5})),
        ("trainer", "services.trainer", _flags({
            **common, "group_id": f"{plan.prefix}trainer", "last_n": plan.last_n})),
    ]  # fmt: skip


def deployment_request(plan: DemoPlan, v1_version: int) -> dict[str, Any]:
    """The owner's set_champion request that creates the demo deployment."""
    return {
        "action": "set_champion",
        "model": {"name": MODEL, "version": v1_version},
        "reason": "demo: v1 trained on builtin:credit goes live",
        "setup": {
            "policy": {"auto_approve": True, "retrain_after_windows": plan.retrain_after},
            # The registry's release controller shadows v2 when the trainer publishes it and
            # promotes it once the paired evidence holds (docs/decisions.md, release controller).
            "release": {
                "approval": "auto",
                "min_windows": plan.shadow_windows,
                "min_labels": 500,
                "margin": 0.02,
            },
            "thresholds": THRESHOLDS,
            "mode": "shadow",
        },
    }
