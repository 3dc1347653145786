"""The soak's plan: duration, warm-up, rate, ports, the fault schedule and the service commands.

>>> [f.kind for f in schedule(300.0, 60.0)][:3]
['hot_swap', 'kill:scorer-1', 'pause_broker']
>>> parse_duration("30m"), parse_duration("90s"), parse_duration("120")
(1800.0, 90.0, 120.0)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from services.cli.demo_plan import free_port

DEPLOYMENT = "credit"
MODEL = "credit"
# One round of faults; a long run repeats it. Hot swaps come twice a round.
KINDS = (
    "hot_swap",
    "kill:scorer-1",
    "pause_broker",
    "kill:drift",
    "restart_redis",
    "webhook_500",
    "kill:alerting",
    "hot_swap",
    "kill:registry",
    "kill:scorer-2",
)
# Actuals follow their events by seconds; a short join TTL lets Redis reach its steady size
# within warm-up, so its memory check measures leaks, not the default day of join entries.
JOIN_TTL_S = 30
# Likewise the closed-window history drift keeps per deployment (bounded, 1,000 by default,
# hours to fill at one window per 10 s): full within a minute here.
HISTORY_WINDOWS = 6
MIN_SPACING_S = 18.0  # a 5-minute run still gets one fault of each kind
MAX_SPACING_S = 60.0
FAULT_SPAN = 0.85  # faults stop here; the rest of the run shows the system after the last one
# Always-firing thresholds: the soak wants a steady trickle of webhooks to fail and recover,
# not drift detection (the load is stationary).
THRESHOLDS = [
    {"metric": "psi", "feature": None, "warning": 0.0001, "critical": 100.0,
     "hysteresis": 0.00005, "direction": "above"},
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault of the schedule: what, and when (seconds since the load started)."""

    at_s: float
    kind: str


def parse_duration(text: str) -> float:
    """Seconds from '1800', '90s', '30m' or '1h'."""
    text = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:], None)
    value = float(text[:-1] if scale else text) * (scale or 1.0)
    if value <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return value


def warmup_for(duration_s: float) -> float:
    """Warm-up before faults and before the memory baseline: 20% of the run, at most 3 min."""
    return min(180.0, 0.2 * duration_s)


def schedule(duration_s: float, warmup_s: float, kinds: tuple[str, ...] = KINDS) -> list[Fault]:
    """Faults evenly spread between warm-up and 85% of the run, cycling through ``kinds``."""
    window = FAULT_SPAN * duration_s - warmup_s
    if window <= 0:
        return []
    spacing = min(MAX_SPACING_S, max(MIN_SPACING_S, window / len(kinds)))
    count = int(window / spacing + 1e-9)
    return [Fault(warmup_s + i * spacing, kinds[i % len(kinds)]) for i in range(count)]


def parse_kinds(text: str) -> tuple[str, ...]:
    """Fault kinds from "pause_broker,kill:drift"; ValueError naming an unknown one."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown fault {', '.join(unknown) or '(none)'}; known: "
                         f"{', '.join(dict.fromkeys(KINDS))}")  # fmt: skip
    return kinds


@dataclasses.dataclass(frozen=True)
class SoakPlan:
    """Everything the run depends on, with the ports of its private stack."""

    var_dir: Path
    prefix: str
    duration_s: float = 1800.0
    rate: float = 300.0
    label_delay_s: float = 3.0
    # Redis memory is a sawtooth with the join TTL as period: 6 samples a period keep the medians
    # of the growth check from aliasing it in short runs.
    sample_s: float = 5.0
    batch_size: int = 1000
    kafka_port: int = 0
    controller_port: int = 0
    redis_port: int = 0
    registry_port: int = 0
    alerting_port: int = 0
    sink_port: int = 0
    metrics_ports: tuple[tuple[str, int], ...] = ()

    @property
    def warmup_s(self) -> float:
        """Seconds of load before faults start."""
        return warmup_for(self.duration_s)

    @property
    def bootstrap(self) -> str:
        """The private broker."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def log_dir(self) -> Path:
        """Service logs."""
        return self.var_dir / "log"

    def with_ports(self) -> SoakPlan:
        """Every 0 port replaced by a free one."""
        names = ("registry", "scorer-1", "scorer-2", "drift", "alerting")
        return dataclasses.replace(
            self,
            kafka_port=self.kafka_port or free_port(),
            controller_port=self.controller_port or free_port(),
            redis_port=self.redis_port or free_port(),
            registry_port=self.registry_port or free_port(),
            alerting_port=self.alerting_port or free_port(),
            sink_port=self.sink_port or free_port(),
            metrics_ports=self.metrics_ports or tuple((n, free_port()) for n in names),
        )

    def env(self) -> dict[str, str]:
        """Environment for the infra scripts and every child: the private stack only."""
        return {
            "STREAMOPS_VAR_DIR": str(self.var_dir),
            "STREAMOPS_KAFKA_PORT": str(self.kafka_port),
            "STREAMOPS_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "STREAMOPS_REDIS_PORT": str(self.redis_port),
            "STREAMOPS_KAFKA_BOOTSTRAP": self.bootstrap,
            "STREAMOPS_TOPIC_PREFIX": self.prefix,
        }


def _flags(values: dict[str, Any]) -> list[str]:
    return [a for k, v in values.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def alerting_config(plan: SoakPlan, secret: str) -> str:
    """Every alert to the soak's sink; repeats often so the receiver's 500s meet deliveries."""
    return "\n".join(
        [
            "receivers:",
            f'  - {{name: soak-sink, url: "http://127.0.0.1:{plan.sink_port}/", '
            f'secret: "{secret}", timeout: 5s}}',
            "route:",
            "  receiver: soak-sink",
            "  group_by: [deployment]",
            "  group_wait: 1s",
            "  group_interval: 2s",
            "  repeat_interval: 15s",
            "",
        ]
    )


def service_commands(plan: SoakPlan, config_file: Path) -> list[tuple[str, str, list[str]]]:
    """(name, module, args) of every supervised service, in start order."""
    ports = dict(plan.metrics_ports)
    common = {
        "kafka_bootstrap": plan.bootstrap,
        "topic_prefix": plan.prefix,
        "redis_port": plan.redis_port,
        "var_dir": plan.var_dir,
    }
    window = max(500, int(plan.rate * 10))
    return [
        ("registry", "services.registry", _flags({
            **common, "metrics_port": ports["registry"], "http_port": plan.registry_port,
            "transactional_id": f"{plan.prefix}registry", "sample_interval_s": 2})),
        *[(f"scorer-{i}", "services.scorer", _flags({
            **common, "metrics_port": ports[f"scorer-{i}"], "group_id": f"{plan.prefix}scorer",
            "instance_id": f"soak-{i}", "max_wait_ms": 20, "batch_size": plan.batch_size}))
          for i in (1, 2)],
        ("drift", "services.drift", _flags({
            **common, "metrics_port": ports["drift"], "group_id": f"{plan.prefix}drift",
            "window_count": window, "join_ttl_s": JOIN_TTL_S,
            "history_windows": HISTORY_WINDOWS})),
        ("alerting", "services.cli.demo_alerting", _flags({
            **common, "metrics_port": ports["alerting"], "group_id": f"{plan.prefix}alerting",
            "config_file": config_file, "api_port": plan.alerting_port, "tick_s": 0.25,
            "session_timeout_s": 6, "backoff_base_s": 0.5, "backoff_cap_s": 5})),
    ]  # fmt: skip


def deployment_request(version: int, reason: str, first: bool) -> dict[str, Any]:
    """A set_champion request for `version`; the first one creates the deployment."""
    body: dict[str, Any] = {
        "action": "set_champion",
        "model": {"name": MODEL, "version": version},
        "reason": reason,
    }
    if first:
        body["setup"] = {"policy": {"auto_approve": True}, "thresholds": THRESHOLDS}
    return body
