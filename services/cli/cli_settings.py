"""The settings every `streamops` command reads (`STREAMOPS_*`, then `STREAMOPS_CLI_*`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from services.common.settings import CommonSettings, Secret, load_settings


@dataclasses.dataclass(frozen=True)
class CliSettings(CommonSettings):
    """Common settings plus where the registry and alerting APIs are and the token to send."""

    service: ClassVar[str] = "cli"

    registry_url: str = "http://127.0.0.1:8000"
    alerting_url: str = "http://127.0.0.1:9095"
    token: Secret = Secret("")
    timeout_s: float = 10.0


def cli_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> CliSettings:
    """Settings for one CLI command (unknown STREAMOPS_* keys are refused)."""
    return load_settings(CliSettings, "cli", environ, overrides)
