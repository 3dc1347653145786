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
    transactional_id: str = "streamops-registry"  # one writer: a second registry is fenced

    def __post_init__(self) -> None:
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"http_port {self.http_port} is not a TCP port")
        if self.drift_reports_kept < 1:
            raise ValueError("drift_reports_kept must be >= 1")
