"""The registry's settings (`STREAMOPS_REGISTRY_*`, flags), defined once."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import CommonSettings, Secret


@dataclasses.dataclass(frozen=True)
class RegistrySettings(CommonSettings):
    """Where the registry listens, whom it trusts, and who may do what."""

    service: ClassVar[str] = "registry"

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    tokens: Secret = Secret("")  # name:role:token,... with role viewer|editor|owner
    public_reads: bool = False  # reads without a token (never writes)
    trusted_keys_dir: str = ""  # default: <var_dir>/keys
    replay_timeout_s: float = 60.0
    drift_reports_kept: int = 100
    breaches_kept: int = 200  # transitions per deployment (the dashboard's alerts timeline)
    # Live operational figures (latency, rates, current feature values) come from reading a
    # bounded tail of `events`, `predictions` and `deadletter` every interval: at most
    # `sample_per_partition` records per partition per round, whatever the topic's rate.
    sample_per_partition: int = 100  # 0 turns the sampler off
    sample_interval_s: float = 2.0
    transactional_id: str = "streamops-registry"  # one writer: a second registry is fenced
    # How often the release controller looks at the deployments with a release policy
    # (services/registry/release_controller.py); 0 turns it off.
    release_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"http_port {self.http_port} is not a TCP port")
        if self.drift_reports_kept < 1:
            raise ValueError("drift_reports_kept must be >= 1")
        if self.breaches_kept < 1:
            raise ValueError("breaches_kept must be >= 1")
        if self.sample_per_partition < 0 or self.sample_per_partition > 10_000:
            raise ValueError("sample_per_partition must be within 0..10000 (0 = off)")
        if self.sample_interval_s < 0.2:
            raise ValueError("sample_interval_s must be >= 0.2")
        if self.release_interval_s < 0:
            raise ValueError("release_interval_s must be >= 0 (0 = off)")
