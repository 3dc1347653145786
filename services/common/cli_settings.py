"""The settings of the user-side tools, the `streamops` command and `import streamops`.

Both read `STREAMOPS_*`, then `STREAMOPS_CLI_*` (the `cli` scope), so one set of environment
variables points both at the same broker, registry and token, and the unknown-key rule still
catches typos (`STREAMOPS_CLI_TOKN`).

>>> cli_settings({"STREAMOPS_CLI_REGISTRY_URL": "http://r:8000"}).registry_url
'http://r:8000'
"""

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
    # The alerting API's token; empty: var/alerting/token of a local stack, else `token`.
    alerting_token: Secret = Secret("")
    timeout_s: float = 10.0


def cli_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> CliSettings:
    """Settings for one CLI command or client (unknown STREAMOPS_* keys are refused)."""
    return load_settings(CliSettings, "cli", environ, overrides)
