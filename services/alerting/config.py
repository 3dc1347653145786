"""The alerting service's settings (`STREAMOPS_ALERTING_*`, flags), defined once.

Receivers, routes and the retrain policy live in the YAML file `config_file` (see
`services/alerting/routing.py`); these settings say where things run and how hard to retry.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import REPO_ROOT, CommonSettings, Secret


@dataclasses.dataclass(frozen=True)
class AlertingSettings(CommonSettings):
    """Where the alerting service listens, what it reads, how it delivers."""

    service: ClassVar[str] = "alerting"

    group_id: str = "streamops-alerting"
    config_file: str = str(REPO_ROOT / "var" / "alerting" / "alerting.yaml")
    api_host: str = "127.0.0.1"
    api_port: int = 9095
    api_token: Secret = Secret("")  # empty: var/alerting/token, made at first start (0600)
    # Links in payloads: the dashboard (per deployment) and this service (externalURL).
    dashboard_url: str = "http://127.0.0.1:8000/dashboard"
    external_url: str = ""
    tick_s: float = 0.25  # how often groups are looked at for due notifications
    max_attempts: int = 12
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    retry_after_cap_s: float = 3600.0
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    delivery_concurrency: int = 32
    retrain_timeout_s: float = 3600.0  # a retrain in flight this long, never answered, ends
    session_timeout_s: float = 10.0
    metrics_port: int = 9104

    def __post_init__(self) -> None:
        if self.tick_s <= 0 or self.max_attempts < 1 or self.delivery_concurrency < 1:
            raise ValueError("tick_s > 0, max_attempts >= 1 and delivery_concurrency >= 1")
        if self.backoff_base_s <= 0 or self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_base_s > 0 and backoff_cap_s >= backoff_base_s")

    @property
    def namespace(self) -> str:
        """The Redis key prefix of this group's state."""
        return f"streamops:alerting:{self.group_id}"

    @property
    def public_url(self) -> str:
        """externalURL in payloads: the setting, else this service's API address."""
        return self.external_url or f"http://{self.api_host}:{self.api_port}"
